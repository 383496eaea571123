"""How long the command line takes to answer: ``gmm --help``, ``--version`` and an EM fit.

Each command runs as a whole process, ``--repeats`` times after one warm-up run (warm caches),
and the median and range of the wall times are printed with the CPU and the BLAS kernel. With
``--json`` the figures go to a file (written whole, then renamed).

    python benchmarks/cli_startup.py [--repeats 7] [--json benchmarks/results_cli_startup.json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

COMMANDS = {
    "gmm --help": ["--help"],
    "gmm --version": ["--version"],
    "gmm fit faithful -k 2": ["fit", "faithful", "-k", "2", "--out", "{tmp}/fit"],
}


def cpu():
    """The CPU's model name and the BLAS kernel NumPy uses."""
    from threadpoolctl import threadpool_info

    name = platform.processor()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                name = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    import numpy  # noqa: F401  (loads the BLAS that threadpoolctl reports)

    blas = [f"{i.get('internal_api')} {i.get('architecture')}" for i in threadpool_info()
            if i.get("user_api") == "blas"]
    return name, ", ".join(dict.fromkeys(blas))      # NumPy's and SciPy's, when the same, once


def write_json(path, data):
    """Write ``data`` to ``path`` as indented JSON, whole: to a side file, then renamed over."""
    path = Path(path)
    tmp = path.with_suffix(path.suffix + ".part")
    tmp.write_text(json.dumps(data, indent=1) + "\n")
    os.replace(tmp, path)


def side_by_side(script, rev, repeats, root=Path(__file__).resolve().parents[1]):
    """``python script --measure`` in this tree and in ``rev``'s, alternating, ``repeats`` times.

    ``rev`` is checked out into a temporary worktree; each run is its own process, reading its
    own tree's packages. The script prints one JSON line per case, with a ``"case"`` list.

    Returns
    -------
    rev : str
        The short commit.
    runs : dict
        ``{"this tree": [...], rev: [...]}``: per repeat, ``{case tuple: record}``.
    """
    def run(tree):
        out = subprocess.run([sys.executable, str(Path(script).resolve()), "--measure"], cwd=tree,
                             env={**os.environ, "PYTHONPATH": str(tree)}, capture_output=True,
                             text=True, check=True)
        return {tuple(r["case"]): r for r in map(json.loads, out.stdout.splitlines())}

    rev = subprocess.run(["git", "rev-parse", "--short", rev], cwd=root, check=True,
                         capture_output=True, text=True).stdout.strip()
    with tempfile.TemporaryDirectory() as tmp:
        other = Path(tmp) / "tree"
        subprocess.run(["git", "worktree", "add", "--detach", str(other), rev], cwd=root,
                       check=True, capture_output=True)
        try:
            runs = {"this tree": [], rev: []}
            for _ in range(repeats):
                runs["this tree"].append(run(root))
                runs[rev].append(run(other))
        finally:
            subprocess.run(["git", "worktree", "remove", "--force", str(other)], cwd=root,
                           check=True, capture_output=True)
    return rev, runs


def compare_main(doc, script, measure, repeats, argv=None):
    """The command line of a this-tree-against-a-commit benchmark (``--rev``, ``--repeats``, ``--json``).

    Parameters
    ----------
    doc : str
        The benchmark's docstring (its first line describes the command).
    script : str
        The benchmark's file; it runs itself with ``--measure`` in each tree.
    measure : callable
        What ``--measure`` runs: prints one JSON line per case (:func:`side_by_side`).
    repeats : int
        The default ``--repeats``.
    argv : list of str or None

    Returns
    -------
    None in the ``--measure`` child; else ``(args, rev, cases)``, where ``cases`` maps each case
    (in this tree's order) to its records ``(then, now)``, each a list over the repeats.
    """
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("--rev", default="HEAD~1", help="the commit to compare against")
    parser.add_argument("--repeats", type=int, default=repeats)
    parser.add_argument("--json", type=Path, help="write the figures to this file")
    parser.add_argument("--measure", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.measure:
        measure()
        return None
    rev, runs = side_by_side(script, args.rev, args.repeats)
    cases = {case: ([r[case] for r in runs[rev]], [r[case] for r in runs["this tree"]])
             for case in runs["this tree"][0]}
    return args, rev, cases


def write_result(result, path):
    """Add the machine and the date to ``result``, print the machine, write it to ``path``."""
    name, blas = cpu()
    result.update(machine=f"{name}, {os.cpu_count()} cores, {blas}",
                  date=time.strftime("%Y-%m-%d"))
    print(result["machine"])
    if path:
        write_json(path, result)


def timed(argv, repeats):
    """Wall seconds of ``gmm argv`` as a whole process, after one warm-up run."""
    gmm = shutil.which("gmm", path=os.path.dirname(sys.executable)) or "gmm"
    times = []
    for i in range(repeats + 1):
        with tempfile.TemporaryDirectory() as tmp:
            args = [a.format(tmp=tmp) for a in argv]
            t = time.perf_counter()
            subprocess.run([gmm, *args], check=True, capture_output=True)
            if i:
                times.append(time.perf_counter() - t)
    return times


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeats", type=int, default=7)
    p.add_argument("--json", help="write the figures to this file")
    args = p.parse_args()
    name, blas = cpu()
    print(f"CPU: {name}; BLAS: {blas}; load average {os.getloadavg()[0]:.2f}")
    rows = []
    for label, argv in COMMANDS.items():
        times = timed(argv, args.repeats)
        rows.append({"command": label, "median_s": statistics.median(times),
                     "min_s": min(times), "max_s": max(times), "repeats": len(times)})
        print(f"{label:<24} median {rows[-1]['median_s']:.2f} s "
              f"(range {rows[-1]['min_s']:.2f}-{rows[-1]['max_s']:.2f}, {len(times)} runs)")
    if args.json:
        write_json(args.json, {"cpu": name, "blas": blas, "load_average": os.getloadavg()[0],
                               "rows": rows})


if __name__ == "__main__":
    main()
