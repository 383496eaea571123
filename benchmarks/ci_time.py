"""How long a newcomer waits: a fresh clone's ``make test`` or ``make demo``, empty caches, timed whole.

Clones the repository at ``--rev`` (default HEAD) into a temporary folder and runs
``bash .ci/run TARGET`` there (CI's entry point: it points the PyTensor, numba, JAX and every
other user cache at a new empty folder, then runs ``make TARGET``: the venv, the install, and
the suite or the demo), and records the wall time, pytest's own time and summary (``test``), the
CPU time of the run and its children, the CPU model and the BLAS kernel.
With ``--json`` the run is appended to the file (written whole, then renamed), from which
``benchmarks/docs_tables.py`` writes docs/testing.md's table. Nothing else should run on the
machine meanwhile: the suite uses every core.

    python benchmarks/ci_time.py [--target test|demo] [--rev HEAD]
                                 [--json benchmarks/results_ci_runs.json] [--note TEXT]
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import re
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from cli_startup import cpu, write_json

ROOT = Path(__file__).resolve().parents[1]

#: pytest's last line, e.g. "865 passed, 1 skipped in 578.69s (0:09:38)"
SUMMARY = re.compile(r"^=*\s*(?P<tests>\d+ (?:passed|failed|error).*?) in (?P<s>[\d.]+)s", re.M)


def run_ci(rev, target, log):
    """Clone ``rev`` and run its ``.ci/run target``; the timings, the summary and the exit status."""
    with tempfile.TemporaryDirectory(prefix="ci-time-") as tmp:
        clone = Path(tmp) / "clone"
        subprocess.run(["git", "clone", "--quiet", str(ROOT), str(clone)], check=True)
        subprocess.run(["git", "-C", str(clone), "checkout", "--quiet", rev], check=True)
        commit = subprocess.run(["git", "-C", str(clone), "rev-parse", "--short", "HEAD"],
                                check=True, capture_output=True, text=True).stdout.strip()
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        start = time.perf_counter()
        with open(log, "w") as fh:
            status = subprocess.run(["bash", ".ci/run", target], cwd=clone, stdout=fh,
                                    stderr=subprocess.STDOUT).returncode
        wall = time.perf_counter() - start
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
    text = Path(log).read_text(errors="replace")
    found = SUMMARY.findall(text)
    tests, pytest_s = (found[-1][0], float(found[-1][1])) if found else ("-", None)
    return {"target": target, "commit": commit, "date": datetime.date.today().isoformat(), "status": status,
            "wall_s": round(wall, 1), "pytest_s": pytest_s, "tests": tests,
            "user_s": round(after.ru_utime - before.ru_utime, 1),
            "sys_s": round(after.ru_stime - before.ru_stime, 1)}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--target", choices=("test", "demo"), default="test",
                        help="the README command to time: make test (CI) or make demo")
    parser.add_argument("--rev", default="HEAD", help="the commit to clone and time")
    parser.add_argument("--json", type=Path, help="append the run to this file")
    parser.add_argument("--note", default="", help="what the run's table row should say besides")
    parser.add_argument("--log", type=Path, help="where .ci/run's output goes "
                        "(default: a file in the system's temporary folder)")
    args = parser.parse_args(argv)
    log = args.log or Path(tempfile.gettempdir()) / "ci_time.log"
    name, blas = cpu()
    record = {**run_ci(args.rev, args.target, log), "cpu": name, "blas": blas, "cores": os.cpu_count(),
              "recorded_by": "benchmarks/ci_time.py", "note": args.note}
    print(json.dumps(record, indent=1))
    print(f"log: {log}")
    if args.json:
        runs = json.loads(args.json.read_text())["runs"] if args.json.exists() else []
        write_json(args.json, {"runs": runs + [record]})
    return 0 if record["status"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
