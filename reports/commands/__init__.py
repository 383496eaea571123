"""The commands of ``gmm``, one module each; :data:`COMMANDS` is their table.

Each module holds ``NAME``, ``SUMMARY`` (one line), ``DESCRIPTION``, ``add_arguments(parser)``
(from the shared option groups of :mod:`reports.options`) and ``run(args)``. A module loads its
heavy dependencies inside ``run``, so the parser, which every command's arguments build, starts at
once. Adding a command means adding one module here, one entry below, and its tests.
"""

from reports.commands import (
    compare,
    demo,
    fit,
    impute,
    predict,
    report,
    sample,
    select,
    simulate,
)

#: command name -> its module, in the order ``gmm --help`` lists them
COMMANDS = {m.NAME: m for m in (simulate, fit, select, sample, compare, predict, impute, report,
                                demo)}
