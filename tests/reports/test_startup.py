"""The command line starts at once: what each command imports, with the heavy libraries absent.

Speed itself is measured by ``benchmarks/cli_startup.py``; here the imports that decide it.
"""

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[2]

#: the Bayesian stack: an EM-only command must run without any of it
BAYESIAN = ("pymc", "pytensor", "jax", "jaxlib", "numpyro", "blackjax", "nutpie")


def gmm(argv, tmp_path, block=()):
    """Run ``gmm argv`` in a fresh interpreter with ``block`` made unimportable.

    Returns the exit status, stdout and stderr, and the top-level modules loaded at exit.
    """
    code = (
        "import sys, json, atexit, importlib.machinery\n"
        # as if not installed: the path finder, which finds site-packages, does not see them
        "class Hidden(importlib.machinery.PathFinder):\n"
        "    @classmethod\n"
        "    def find_spec(cls, name, path=None, target=None):\n"
        f"        if name.split('.')[0] in {list(block)!r}:\n"
        "            return None\n"
        "        return importlib.machinery.PathFinder.find_spec(name, path, target)\n"
        "sys.meta_path[:] = [Hidden if f is importlib.machinery.PathFinder else f\n"
        "                    for f in sys.meta_path]\n"
        "atexit.register(lambda: print('MODULES ' + json.dumps(sorted({m.split('.')[0] "
        "for m, v in sys.modules.items() if v is not None})), file=sys.stderr))\n"
        "from reports.entry import main\n"
        f"sys.exit(main({[str(a) for a in argv]!r}))\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd=tmp_path, env=None, timeout=600)
    lines = proc.stderr.splitlines()
    modules = set(json.loads(next(line for line in lines if line.startswith("MODULES "))[8:]))
    err = "\n".join(line for line in lines if not line.startswith("MODULES "))
    return proc.returncode, proc.stdout, err, modules


HEAVY = {"pandas", "scipy", "sklearn", "xarray", "numba", "matplotlib", "arviz", *BAYESIAN}


@pytest.mark.parametrize("argv", [["--help"], ["--version"], ["fit", "--help"],
                                  ["sample", "--help"], ["select", "-h"]])
def test_help_and_version_load_nothing_heavy(argv, tmp_path):
    code, out, err, modules = gmm(argv, tmp_path)
    assert code == 0, err
    assert out.strip()
    assert not HEAVY & modules, HEAVY & modules


@pytest.fixture(scope="module")
def em_folder(tmp_path_factory):
    """An EM fit written with the Bayesian stack unimportable."""
    where = tmp_path_factory.mktemp("startup")
    code, out, err, modules = gmm(["fit", "faithful", "-k", "2", "--out", "fit"], where,
                                  block=BAYESIAN)
    assert code == 0, err
    return where, out, modules


def test_fit_runs_without_the_bayesian_stack(em_folder):
    where, out, modules = em_folder
    assert "converged True" in out
    assert (where / "fit" / "em.nc").is_file()
    assert not set(BAYESIAN) & modules


@pytest.mark.parametrize("argv", [
    ["select", "faithful", "--kmax", "2", "--types", "VVV,EII", "--out", "sel"],
    ["predict", "fit", "faithful", "--out", "pred"],
    ["report", "fit"],
])
def test_em_only_commands_run_without_the_bayesian_stack(argv, em_folder):
    where, _, _ = em_folder
    code, out, err, modules = gmm(argv, where, block=BAYESIAN)
    assert code == 0, err
    assert not set(BAYESIAN) & modules
    assert "Traceback" not in err
    # installed (the dev extra), never used by the command line: xarray is told it is absent
    assert "dask" not in modules and "distributed" not in modules


def test_the_gibbs_route_samples_without_the_bayesian_stack(em_folder):
    where, _, _ = em_folder
    code, out, err, modules = gmm(["sample", "faithful", "-k", "2", "--sampler", "gibbs",
                                   "--out", "g"], where, block=BAYESIAN)
    assert code == 0, err
    assert not set(BAYESIAN) & modules
    assert "converged after 4 x " in out


def test_a_bayesian_command_without_its_stack_says_so_in_one_line(em_folder):
    where, _, _ = em_folder
    code, out, err, _ = gmm(["sample", "faithful", "-k", "2", "--sampler", "blackjax", "--out",
                             "s"], where, block=("pymc", "jax"))
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1, err
    assert "sampler='blackjax' needs the pymc package" in lines[0]
    assert not (where / "s").exists()
