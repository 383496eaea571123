"""The house's rules, checked statically.

Imports point one way: models (spec) <- em, models (spec) <- models.pymc, both <- reports. No
cycles, even inside functions. No private name crosses a module boundary. No branch on a
covariance layout's or family's name outside the two tables that own them. The command line's
EM commands start without PyMC, PyTensor, JAX or scikit-learn's estimator machinery.
"""

import ast
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from models.families import FAMILIES
from models.storage import STORAGES

ROOT = Path(__file__).parents[1]
PACKAGES = ("models", "em", "reports")


def _loaded_after(stmt, env=None):
    code = f"import sys; {stmt}; print(' '.join(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=ROOT, env=env)
    return set(out.stdout.split())


def _tops(modules):
    return {m.split(".")[0] for m in modules}


def _modules(root=ROOT):
    """module name -> its path, for every module of the three packages under ``root``."""
    out = {}
    for pkg in PACKAGES:
        for path in sorted((root / pkg).rglob("*.py")):
            rel = path.relative_to(root).with_suffix("")
            out[".".join(rel.parts[:-1] if rel.name == "__init__" else rel.parts)] = path
    return out


SPEC = sorted(m for m in _modules() if m.startswith("models") and not m.startswith("models.pymc"))


def test_spec_imports_neither_em_nor_pymc():
    loaded = _tops(_loaded_after("; ".join(f"import {m}" for m in SPEC)))
    assert not {"em", "pymc", "pytensor", "jax", "reports"} & loaded


def test_em_imports_the_spec_only():
    loaded = _tops(_loaded_after("import em; import em.estimator"))
    assert "models" in loaded
    assert not {"pymc", "pytensor", "jax", "reports", "dask"} & loaded
    assert not any(m.startswith("models.pymc") for m in _loaded_after("import em.estimator"))


def test_pymc_model_imports_the_spec_only():
    modules = [m for m in _modules() if m.startswith("models.pymc")]
    loaded = _loaded_after("; ".join(f"import {m}" for m in modules))
    assert "pymc" in _tops(loaded)
    assert not {"em", "reports"} & _tops(loaded)


def test_routes_and_sampling_load_no_pymc():
    """The route table and the sampling front load neither PyMC nor JAX until a route runs."""
    loaded = _tops(_loaded_after("import models.pymc.routes, models.pymc.sampling"))
    assert not {"pymc", "pytensor", "jax", "em", "reports"} & loaded


def test_nothing_imports_reports():
    for pkg in ("models", "em"):
        for path in (ROOT / pkg).rglob("*.py"):
            tree = ast.parse(path.read_text())
            for node in ast.walk(tree):
                if isinstance(node, ast.Import | ast.ImportFrom):
                    names = [a.name for a in node.names] if isinstance(node, ast.Import) \
                        else [node.module or ""]
                    assert not any(n.split(".")[0] == "reports" for n in names), path


def _imports(path):
    """(module, name) pairs of every project import in a file, function-level included."""
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            for a in node.names:
                yield a.name, None
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            for a in node.names:
                yield node.module, a.name


def _project_imports():
    """module -> project modules it imports anywhere in its body (function-level included)."""
    modules = _modules()
    graph = {}
    for name, path in modules.items():
        deps = set()
        for module, imported in _imports(path):
            deps.add(module)
            if imported is not None:
                deps.add(f"{module}.{imported}")
        graph[name] = {d for d in deps if d in modules and d != name}
    return graph


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


def private_imports(root=ROOT):
    """Every ``from project.module import _name`` (and ``import project._module``) in the packages."""
    modules = _modules(root)
    found = []
    for name, path in modules.items():
        for module, imported in _imports(path):
            if module.split(".")[0] not in PACKAGES:
                continue
            parts = module.split(".") + ([] if imported is None else [imported])
            if any(p.startswith("_") and not p.startswith("__") for p in parts):
                found.append(f"{name}: {module}{'' if imported is None else ' ' + imported}")
    return found


def test_no_private_name_crosses_a_module():
    assert private_imports() == []


def test_the_private_import_check_finds_one(tmp_path):
    # a copy of the tree, never the checkout itself: the other checks read the checkout's files
    # from other processes while this one runs
    for pkg in PACKAGES:
        shutil.copytree(ROOT / pkg, tmp_path / pkg, ignore=shutil.ignore_patterns("out", "__pycache__"))
    assert private_imports(tmp_path) == []
    (tmp_path / "reports" / "_layout_probe.py").write_text("from models.params import _readonly\n")
    assert private_imports(tmp_path) == ["reports._layout_probe: models.params _readonly"]


#: the names whose comparison is a branch on a layout or a family
NAMES = {s.name for s in STORAGES} | {f.name for f in FAMILIES}
#: the tables that own those branches
OWNERS = {ROOT / "models" / "families.py", ROOT / "models" / "storage.py"}


def _named(node):
    """Whether an expression is one of :data:`NAMES` or a literal collection holding one."""
    if isinstance(node, ast.Constant):
        return isinstance(node.value, str) and node.value in NAMES
    if isinstance(node, ast.Tuple | ast.List | ast.Set):
        return any(_named(e) for e in node.elts)
    return False


def branches_on_names(source):
    """Comparisons, dict-literal lookups and match cases on a layout's or family's name."""
    count = 0
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Compare):
            count += any(_named(e) for e in [node.left, *node.comparators])
        elif isinstance(node, ast.Dict):
            count += any(k is not None and _named(k) for k in node.keys)
        elif isinstance(node, ast.match_case):
            count += isinstance(node.pattern, ast.MatchValue) and _named(node.pattern.value)
    return count


def test_no_branch_on_a_layout_or_family_name_outside_its_table():
    counts = {str(path.relative_to(ROOT)): branches_on_names(path.read_text())
              for path in _modules().values() if path not in OWNERS}
    assert {p: n for p, n in counts.items() if n} == {}


@pytest.mark.parametrize(("source", "n"), [
    ('if storage == "tied": pass', 1),
    ('x = ct in ("diag", "spherical")', 1),
    ('x = {"full": 1, "tied": 2}[s]', 1),
    ('match s:\n    case "VVV": pass', 1),
    ('x = covariance_type == "full"', 1),
    ('x = s.name', 0),
    ('x = {"pi": 1}', 0),
])
def test_the_branch_count_sees_each_kind_of_branch(source, n):
    assert branches_on_names(source) == n
