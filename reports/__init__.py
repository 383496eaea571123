"""The suite's face: the ``gmm`` command, the EM-against-posterior comparison, HTML reports.

Imports :mod:`em` and :mod:`models`; nothing imports this package.
"""
