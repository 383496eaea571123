"""Imports point one way: models (spec) <- em, models (spec) <- models.pymc, both <- reports."""

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


def test_pymc_model_imports_the_spec_only():
    loaded = _loaded_after("import models.pymc")
    assert "pymc" in loaded
    assert not {"em", "reports"} & loaded


def test_nothing_imports_reports():
    for pkg in ("models", "em"):
        for path in (ROOT / pkg).rglob("*.py"):
            tree = ast.parse(path.read_text())
            for node in ast.walk(tree):
                if isinstance(node, ast.Import | ast.ImportFrom):
                    names = [a.name for a in node.names] if isinstance(node, ast.Import) \
                        else [node.module or ""]
                    assert not any(n.split(".")[0] == "reports" for n in names), path


def _project_imports():
    """module -> project modules it imports anywhere in its body (function-level included)."""
    graph = {}
    for pkg in ("models", "em", "reports"):
        for path in (ROOT / pkg).rglob("*.py"):
            rel = path.relative_to(ROOT).with_suffix("")
            name = ".".join(rel.parts[:-1] if rel.name == "__init__" else rel.parts)
            deps = set()
            for node in ast.walk(ast.parse(path.read_text())):
                if isinstance(node, ast.Import):
                    deps |= {a.name for a in node.names}
                elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                    deps.add(node.module)
                    deps |= {f"{node.module}.{a.name}" for a in node.names}
            graph[name] = deps
    return {m: {d for d in deps if d in graph and d != m} for m, deps in graph.items()}


def test_no_import_cycles_even_inside_functions():
    graph = _project_imports()
    state = {}

    def visit(m, stack):
        state[m] = "open"
        for d in sorted(graph[m]):
            # a package's __init__ gathering its own submodules is not a cycle with them
            if m == d.rsplit(".", 1)[0] and "." in d:
                continue
            if state.get(d) == "open":
                raise AssertionError(" -> ".join(stack + [m, d]))
            if d not in state:
                visit(d, stack + [m])
        state[m] = "done"

    for m in sorted(graph):
        if m not in state:
            visit(m, [])
