"""Packages whose public names load with the modules that define them (PEP 562).

``import models``, ``import em`` and ``import models.pymc`` then cost almost nothing: the command
line's parser imports ``models.families`` and ``models.pymc.routes`` without loading SciPy, PyMC
or scikit-learn's estimator machinery.
"""

from __future__ import annotations

import importlib


def exports(package, namespace, table):
    """``__getattr__`` and ``__dir__`` for a package that loads ``table``'s names on first use.

    Parameters
    ----------
    package : str
        The package's ``__name__``, for the error message.
    namespace : dict
        The package's ``globals()``: a loaded name is kept there, so it loads once.
    table : dict of str to str
        Public name -> the module that defines it.

    Returns
    -------
    (callable, callable)
        The module's ``__getattr__`` and ``__dir__``.
    """
    def __getattr__(name):
        module = table.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(module), name)
        namespace[name] = value
        return value

    def __dir__():
        return sorted(set(namespace) | set(table))

    return __getattr__, __dir__
