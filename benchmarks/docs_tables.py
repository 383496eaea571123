"""Write the documentation's tables from the benchmarks' results, so that they cannot drift.

Every table in ``README.md`` and ``docs/*.md`` that shows a measurement sits between two markers,

.. code-block:: markdown

    <!-- table: em_vs_sklearn -->
    | case | ... |
    <!-- /table -->

and is made here from ``benchmarks/results_<json>.json``. The table's name says which: the part
before the first dot names the JSON (``em_vs_sklearn`` is ``results_em_vs_sklearn.json``), the
rest the view of it (``pymc_sampling.compile``). Nothing between the markers is typed by hand.

Usage, from the repository root::

    python benchmarks/docs_tables.py           # rewrite every table from its JSON
    python benchmarks/docs_tables.py --check   # exit 1, listing each table its JSON disagrees with

``tests/test_docs.py`` runs the check.
"""

from __future__ import annotations

import argparse
import json
import math
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / "benchmarks"

MARKER = re.compile(r"(<!-- table: (?P<name>[\w.-]+) -->\n)(?P<body>.*?)(<!-- /table -->)", re.DOTALL)


# ---------------------------------------------------------------------------------------------
# Number formats
# ---------------------------------------------------------------------------------------------
def sig(x, digits=3):
    """``x`` to ``digits`` significant digits, without an exponent; whole digits are kept."""
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "-"
    if x == 0:
        return "0"
    decimals = max(digits - 1 - math.floor(math.log10(abs(x))), 0)
    return f"{x:.{decimals}f}"


def power_of_ten(n):
    """``100000`` as ``1e5``, ``200000`` as ``2e5``; other integers with thousands separators."""
    exponent = math.floor(math.log10(n))
    mantissa = n / 10 ** exponent
    return f"{mantissa:g}e{exponent}" if mantissa == int(mantissa) and exponent >= 4 else f"{n:,}"


def whole(x):
    """A count or rate: whole units from 10 up, two significant digits below."""
    return f"{x:.0f}" if x >= 10 else sig(x, 2)


def rel(x):
    """A relative difference: ``0``, or one significant digit in exponent form."""
    return "0" if x == 0 else f"{x:.0e}".replace("e-0", "e-")


def table(header, rows):
    """A Markdown table, one line per row, ending with a newline."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------------------------------------
# Views: one function per table name, from the loaded JSON to the table
# ---------------------------------------------------------------------------------------------
def em_vs_sklearn(data):
    """``benchmarks/em_vs_sklearn.py``: seconds per EM iteration against scikit-learn."""
    rows = []
    for r in data["results"]:
        mem = r["peak_mem_ours_over_sklearn"]
        rows.append([
            f"N={power_of_ten(r['N'])}, d={r['d']}, K={r['K']}, {r['covariance_type']}",
            sig(r["sklearn_s_per_iter"]), sig(r["ours_s_per_iter"]), f"{r['ratio']:.1f}x",
            f"{r['float32_gain']:.2f}x", f"{r['times_bound']:.1f}",
            "< 0.01" if mem < 0.005 else f"{mem:.2f}",
            f"{rel(r['rel_loglik_diff'])} ({rel(r['rel_loglik_diff_float32'])})"])
    return table(["case", "scikit-learn s/iter", "gmm-suite s/iter", "speed-up", "float32 gain",
                  "time / flop bound", "peak memory / scikit-learn's", "log-lik rel. diff (float32)"],
                 rows)


def em_vs_sklearn_machine(data):
    """The yardstick of the flop bound and the BLAS the run used."""
    blas = sorted({f"{name} {arch}" for name, arch, _ in data["blas"] if arch})
    return table(["BLAS threads", "BLAS", "measured matrix-multiply rate (flop bound's yardstick)"],
                 [[data["threads"], ", ".join(blas), f"{data['gemm_rate_flops'] / 1e9:.1f} GFLOP/s"]])


def em_scale(data):
    """``benchmarks/em_scale.py``: EM from a memmap larger than the memory we want to use."""
    return table(["N", "data (float64)", "peak resident memory", "of the data", "s/iter",
                  "time / in-memory fit's (scaled)"],
                 [[power_of_ten(data["N"]), f"{data['data_bytes'] / 1e9:.1f} GB",
                   f"{data['memmap_peak_rss_bytes'] / 1e6:.0f} MB",
                   f"{100 * data['peak_rss_fraction_of_data']:.1f} %",
                   sig(data["memmap_s_per_iter"]), f"{data['memmap_over_in_memory']:.2f}"]])


def _stopped(row):
    match = re.search(r"stopped after (\d+) s", row.get("error") or "")
    return f"> {match.group(1)}" if match else "-"


def pymc_sampling_routes(data):
    """``benchmarks/pymc_sampling.py --json``: time to first posterior per route, cold and warm."""
    rows = []
    for r in data["rows"]:
        def seconds(key, r=r):
            return _stopped(r) if r[key] is None else f"{r[key]:.1f}"
        same = {True: "yes", False: "no", None: "-"}[r["same_draws"]]
        rows.append([r["data"], r["route"], r["draws"], seconds("cold_s"), seconds("warm_s"),
                     "-" if r["sampling_s"] is None else f"{r['sampling_s']:.1f}",
                     "-" if r["min_ess"] is None else f"{r['min_ess']:.0f}", sig(r["ess_per_s"]),
                     "-" if r["r_hat"] is None else f"{r['r_hat']:.3f}", same])
    return table(["data", "route", "draws", "cold s", "warm s", "sampling s", "min bulk ESS",
                  "ESS/s", "max r_hat", "same draws"], rows)


def pymc_sampling_routes_peer(data):
    """The same run's peer (``pm.Mixture`` + LKJ), and each route's ESS/s against it."""
    p = data["peer"]
    rows = [["`pm.Mixture` + LKJ (PyMC's NUTS, warm)", f"{p['sampling_s']:.1f}",
             f"{p['min_ess_bulk']:.1f}", sig(p["ess_per_s"]), f"{p['max_r_hat']:.2f}", "1"]]
    for r in data["rows"]:
        if r.get("ess_per_s_vs_peer") is not None:
            rows.append([f"this model, {r['route']}", f"{r['sampling_s']:.1f}", f"{r['min_ess']:.0f}",
                         sig(r["ess_per_s"]), f"{r['r_hat']:.3f}", f"{r['ess_per_s_vs_peer']:,.0f}"])
    return table(["Old Faithful K=2, 4x1000", "sampling s", "min bulk ESS", "ESS/s", "max r_hat",
                  "ESS/s over the peer's"], rows)


def pymc_sampling_routes_machine(data):
    """The machine the routes ran on, as the benchmark recorded it."""
    return table(["machine"], [[data["machine"]]])


def pymc_sampling_runs(data):
    """The benchmark's previous version: this model against ``pm.Mixture`` + LKJ, sampling."""
    rows = []
    for key, r in data.items():
        if " | " not in key or "seconds" not in r:
            continue
        what, model = key.split(" | ")
        rows.append([f"{what}, {model}", sig(r["seconds"]), whole(r["min_ess_bulk"]),
                     whole(r["ess_per_s"]), sig(r["max_r_hat"], 4), r["divergences"]])
    return table(["data, model (sampler)", "seconds", "min bulk ESS", "ESS/s", "max r_hat",
                  "divergences"], rows)


def pymc_sampling_compile(data):
    """The benchmark's previous version: compile of the logp and its gradient, cold and warm."""
    backends = {"NUMBA": "numba", "CVM": "C backend", "nutpie": "nutpie"}
    rows = []
    for what, by in data["compile"].items():
        rows.append([what] + [f"{by[b]['cold_s']:.1f} s / {by[b]['warm_s']:.1f} s" for b in backends])
    return table(["data"] + [f"{name}, cold / warm" for name in backends.values()], rows)


def pymc_sampling_gradient(data):
    """The benchmark's previous version: one gradient of each model on the N = 10,000 set."""
    rows = [[key.split(" | ")[0], f"{r['ours_ms']:.2f} ms", f"{r['pm_mixture_lkj_ms']:.2f} ms",
             f"{r['pm_mixture_lkj_ms'] / r['ours_ms']:.1f}x"]
            for key, r in data.items() if key.endswith(" | gradient")]
    return table(["data", "this model", "`pm.Mixture` + LKJ", "ratio"], rows)


RELATIVE = {"VII": "VII", "EII": "VII", "VVI": "VVI", "EEI": "VVI", "VEI": "VVI", "EVI": "VVI",
            "EEE": "EEE", "VVV": "VVV", "VEE": "VVV", "EVE": "VVV", "VVE": "VVV", "EEV": "VVV",
            "VEV": "VVV", "EVV": "VVV"}


def families_speed(data):
    """``benchmarks/families_speed.py --json``: every family per EM iteration.

    The relative is the family with the same storage among VII, VVI, EEE and VVV, at the faster
    of gmm-suite's and scikit-learn's time.
    """
    by = {r["model"]: r for r in data["rows"]}
    fastest = {name: min(t for t in (by[name]["ours_s"], by[name].get("sklearn_s")) if t is not None)
               for name in set(RELATIVE.values())}
    rows = []
    for r in data["rows"]:
        mclust = r.get("mclust_s")
        rows.append([r["model"], sig(r["ours_s"], 2), sig(r.get("sklearn_s"), 3),
                     sig(mclust, 3), f"{r['ours_s'] / fastest[RELATIVE[r['model']]]:.2f}",
                     "-" if mclust is None else f"{mclust / r['ours_s']:.1f}x"])
    return table(["model", "gmm-suite s/iter", "scikit-learn s/iter", "mclust s/iter",
                  "gmm-suite / fastest same-storage relative", "mclust / gmm-suite"], rows)


def select_vs_mclust(data):
    """``benchmarks/select_vs_mclust.py --json``: ``gmm select`` against ``Mclust``, whole process."""
    def seconds(runs):
        return f"{sorted(runs)[len(runs) // 2]:.2f} ({min(runs):.2f}-{max(runs):.2f})"

    rows = []
    for r in data["rows"]:
        rows.append([f"{r['data']} ({power_of_ten(r['n'])} x {r['d']})", seconds(r["mclust_s"]),
                     seconds(r["gmm_s"]), f"{r['target_s']:.2f}",
                     "yes" if r["gmm_median_s"] <= r["target_s"] else "no",
                     f"{r['mclust_model']} ({r['mclust_bic']:.3f})",
                     f"{r['gmm_model']} ({r['gmm_bic']:.3f})", f"{r['gmm_bic_at_mclust_model']:.3f}"])
    return table(["data (N x d)", "mclust s, median (range)", "gmm select s, median (range)",
                  "target s", "met", "mclust's choice (BIC)", "gmm's choice (BIC)",
                  "gmm's BIC at mclust's choice"], rows)


def select_vs_mclust_machine(data):
    """The machine and the load the comparison ran under."""
    return table(["date", "machine", "load average (before, after)", "runs of each"],
                 [[data["date"], data["machine"],
                   f"{data['load_average_before']:.1f}, {data['load_average_after']:.1f}",
                   data["repeats"]]])


VIEWS = {
    "em_vs_sklearn": em_vs_sklearn,
    "em_vs_sklearn.machine": em_vs_sklearn_machine,
    "em_scale": em_scale,
    "pymc_sampling_routes": pymc_sampling_routes,
    "pymc_sampling_routes.peer": pymc_sampling_routes_peer,
    "pymc_sampling_routes.machine": pymc_sampling_routes_machine,
    "pymc_sampling.runs": pymc_sampling_runs,
    "pymc_sampling.compile": pymc_sampling_compile,
    "pymc_sampling.gradient": pymc_sampling_gradient,
    "families_speed": families_speed,
    "select_vs_mclust": select_vs_mclust,
    "select_vs_mclust.machine": select_vs_mclust_machine,
}


# ---------------------------------------------------------------------------------------------
# Rewriting and checking
# ---------------------------------------------------------------------------------------------
def make_table(name, bench_dir=BENCH):
    """The table ``name`` from its JSON in ``bench_dir``.

    Raises
    ------
    KeyError
        ``name`` is no view; the message lists the views.
    FileNotFoundError
        Its JSON does not exist.
    """
    if name not in VIEWS:
        raise KeyError(f"unknown table {name!r}; the tables are {', '.join(VIEWS)}")
    path = Path(bench_dir) / f"results_{name.split('.')[0]}.json"
    return VIEWS[name](json.loads(path.read_text()))


def render(text, bench_dir=BENCH):
    """``text`` with every table between markers made again from its JSON.

    Returns
    -------
    new_text : str
    names : list of str
        The names of the tables whose content changed.
    """
    changed = []

    def replace(match):
        new = make_table(match["name"], bench_dir)
        if new != match["body"]:
            changed.append(match["name"])
        return match.group(1) + new + match.group(4)

    return MARKER.sub(replace, text), changed


def pages(root=ROOT):
    """The Markdown files whose tables are generated: README.md and docs/*.md."""
    root = Path(root)
    return [root / "README.md", *sorted((root / "docs").glob("*.md"))]


def stale_tables(root=ROOT, bench_dir=BENCH):
    """``"path: name"`` for every table that differs from what its JSON gives (empty: all agree).

    A table whose JSON or view is missing is listed too, with the reason.
    """
    root = Path(root)
    stale = []
    for page in pages(root):
        try:
            _, changed = render(page.read_text(), bench_dir)
        except (KeyError, FileNotFoundError) as err:
            stale.append(f"{page.relative_to(root)}: {err}")
            continue
        stale += [f"{page.relative_to(root)}: {name}" for name in changed]
    return stale


def write_tables(root=ROOT, bench_dir=BENCH):
    """Rewrite every table from its JSON; return ``"path: name"`` for each one that changed."""
    root = Path(root)
    written = []
    for page in pages(root):
        text, changed = render(page.read_text(), bench_dir)
        if changed:
            page.write_text(text)
            written += [f"{page.relative_to(root)}: {name}" for name in changed]
    return written


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--check", action="store_true",
                    help="change nothing; exit 1 listing each table that differs from its JSON")
    args = ap.parse_args(argv)
    if args.check:
        stale = stale_tables()
        for line in stale:
            print(f"differs from its JSON: {line}")
        return 1 if stale else 0
    for line in write_tables():
        print(f"rewritten: {line}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
