"""Imports point one way: models (spec) <- em <- models.pymc <- reports."""

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).parents[1]


def _loaded_after(stmt):
    code = f"import sys; {stmt}; print(' '.join(sorted(m.split('.')[0] for m in sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return set(out.stdout.split())


def test_spec_imports_neither_em_nor_pymc():
    loaded = _loaded_after("import models")
    assert not {"em", "pymc", "pytensor", "reports"} & loaded


def test_em_imports_the_spec_only():
    loaded = _loaded_after("import em")
    assert "models" in loaded
    assert not {"pymc", "pytensor", "reports", "dask"} & loaded


def test_nothing_imports_reports():
    for pkg in ("models", "em"):
        for path in (ROOT / pkg).rglob("*.py"):
            tree = ast.parse(path.read_text())
            for node in ast.walk(tree):
                if isinstance(node, ast.Import | ast.ImportFrom):
                    names = [a.name for a in node.names] if isinstance(node, ast.Import) \
                        else [node.module or ""]
                    assert not any(n.split(".")[0] == "reports" for n in names), path
