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


def gibbs_speed(data):
    """``benchmarks/gibbs_speed.py --json``: the Gibbs route against blackjax, label-invariant ESS/s."""
    rows = []
    for r in data["routes"]:
        rows.append([r["data"], r["route"] + (" (faster)" if r["faster"] else ""), r["draws"],
                     f"{r['sampling_s']:.1f}", f"{r['min_invariant_ess']:.0f}",
                     sig(r["ess_per_s"]), f"{r['max_invariant_r_hat']:.3f}"])
    return table(["data", "route", "chains x kept draws", "sampling s",
                  "min label-invariant bulk ESS", "ESS/s", "max label-invariant r_hat"], rows)


def gibbs_speed_iris(data):
    """The default call on iris K = 3 for five seeds, against bayesm's long run."""
    rows = []
    for r in data["iris"]:
        z = r["z_vs_bayesm"]
        rows.append([r["seed"], f"{r['sweeps']:,}", f"{r['sampling_s']:.1f}",
                     "yes" if r["converged"] else "no", f"{r['max_invariant_r_hat']:.3f}",
                     f"{r['min_invariant_ess']:.0f}",
                     " ".join(f"{z[k]:+.1f}" for k in ("pi1", "pi2", "pi3", "loglik"))])
    return table(["seed", "sweeps per chain", "sampling s", "converged", "max r_hat",
                  "min bulk ESS", "z against bayesm: pi_(1) pi_(2) pi_(3) log-lik"], rows)


def gibbs_speed_targets(data):
    """The issue's targets, measured."""
    t = data["targets"]
    f, b = t["faithful_4x1000"], t["big_4x1000"]
    iris = data["iris"]
    slowest = max(r["call_s"] for r in iris)
    rows = [
        ["iris K=3 full, the default call: converged, in at most 30 s warm",
         f"{sum(r['converged'] for r in iris)} of {len(iris)} seeds converged; slowest call "
         f"{slowest:.1f} s"],
        ["Old Faithful K=2 full, 4 x 1000: at most 2 s of sampling", f"{f['sampling_s']:.2f} s"],
        ["N=100,000 d=5 K=4, 4 x 1000 draws (500 burn-in): at most 30 s, under 2 GB",
         f"{b['call_s']:.1f} s whole call ({b['sampling_s']:.1f} s sampling), peak resident "
         f"{b['peak_rss_mb']:,.0f} MB"],
    ]
    return table(["target", "measured"], rows)


def gibbs_speed_bayesm(data):
    """ESS per second per core against bayesm's rnmixGibbs, the same estimator."""
    rows = [[r["data"], r["sampler"], f"{r['sweeps']:,}", sig(r["ms_per_chain_sweep"]),
             f"{r['mean_loglik']:,.1f}", f"{r['mean_pi_max']:.3f}", f"{r['ess_loglik']:.0f}",
             sig(r["ess_per_s_loglik"]), sig(r["ess_per_s_pi_max"])]
            for r in data["bayesm"] if "error" not in r]
    return table(["data", "sampler (one core)", "sweeps per chain", "ms per chain-sweep",
                  "mean log-lik", "mean largest weight", "ESS log-lik", "ESS/s log-lik",
                  "ESS/s largest weight"], rows)


def gibbs_speed_machine(data):
    """The machine and its load (1-minute load average) when the benchmark ran."""
    return table(["machine", "load before", "load after", "run"],
                 [[data["machine"], f"{data['load_before']:.1f}", f"{data['load_after']:.1f}",
                   f"`{data['command']}`, {data['seconds'] / 60:.0f} min"]])


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


def families_speed_machine(data):
    """The machine and the case ``benchmarks/families_speed.py --json`` measured."""
    return table(["machine", "case"], [[data["machine"], f"N={power_of_ten(data['N'])}, "
                                        f"d={data['d']}, K={data['K']}, {data['iters']} iterations"]])


def vb_vs_sklearn(data):
    """``benchmarks/vb_vs_sklearn.py --json``: variational Bayes per iteration, side by side."""
    rows = [[f"N={power_of_ten(r['N'])}, d={r['d']}, K={r['K']}, {r['covariance_type']}",
             sig(r["sklearn_s_per_iter"]), sig(r["ours_s_per_iter"]), f"{r['ratio']:.1f}x",
             rel(r["rel_lower_bound_diff"])] for r in data["results"]]
    return table(["case", "scikit-learn `BayesianGaussianMixture` s/iter",
                  "`em.BayesianGaussianMixture` s/iter", "speed-up", "lower bound rel. diff"], rows)


def online_em(data):
    """``benchmarks/online_em.py --json``: one pass of ``partial_fit`` against the batch fit."""
    return table(
        ["stream", "one pass of `partial_fit`", "batch EM per pass", "memory beyond the block",
         "mean log-lik: batch", "one pass of `partial_fit`", "gap"],
        [[f"{power_of_ten(data['rows'])} x {data['d']} {data['dtype']} "
          f"({data['data_bytes'] / 1e9:.1f} GB), K={data['K']} {data['covariance_type']}, "
          f"blocks of {power_of_ten(data['block'])}",
          f"{data['partial_fit_first_block_s'] + data['partial_fit_rest_s']:.1f} s",
          f"{data['batch_em_s_per_pass']:.1f} s x {data['batch_iterations']} iterations",
          f"{data['partial_fit_peak_bytes_beyond_block'] / 1e6:.1f} MB",
          f"{data['batch_mean_log_lik']:.5f}", f"{data['online_mean_log_lik']:.5f}",
          f"{data['gap']:.1e}"]])


def vb_vs_posterior(data):
    """``benchmarks/vb_vs_posterior.py --json``: Old Faithful, every scalar by three estimators."""
    rows = [[f"`{r['parameter']}`", sig(r["em_mle"], 4), sig(r["em"], 4), sig(r["vb"], 4),
             sig(r["mean"], 4), sig(r["vb_sd"], 3), sig(r["sd"], 3), f"{r['vb_sd_ratio']:.2f}",
             f"{r['vb_z']:+.2f}", f"{100 * r['vb_coverage']:.0f} %"]
            for r in data["faithful"]["rows"]]
    return table(["scalar", "EM MLE", "EM MAP", "VB mean", "posterior mean", "VB sd",
                  "posterior sd", "sd ratio", "(VB - posterior) / sd",
                  "posterior mass in VB's 89 %"], rows)


def vb_vs_posterior_iris(data):
    """The same JSON: iris's sorted weights against bayesm's long Gibbs run."""
    d = data["iris"]
    rows = [[r["weight"], sig(r["drop_in"], 3), sig(r["vb"], 3), sig(r["mean"], 3),
             sig(r["vb_sd"], 2), sig(r["sd"], 2), f"{r['vb_sd'] / r['sd']:.2f}",
             f"{100 * r['vb_coverage']:.0f} %"] for r in d["weights"]]
    return table(["sorted weight", "scikit-learn's model from k-means", "VB mean",
                  "posterior mean", "VB sd", "posterior sd", "sd ratio",
                  "posterior mass in VB's 89 %"], rows)


def missing_em(data):
    """``benchmarks/missing_em.py --json``: an EM iteration with missing cells, beside complete data."""
    case = (f"N={power_of_ten(data['N'])}, d={data['d']}, K={data['K']}, "
            f"{data['covariance_type']}, {100 * data['missing_rate']:.0f} % of cells missing "
            f"({data['incomplete_rows']:,} rows, {data['patterns']} patterns)")
    return table(["case", "complete data s/iter", "with missing cells s/iter", "ratio",
                  "plain per-row s/iter", "speed-up over per-row", "log-lik rel. diff"],
                 [[case, sig(data["complete_s_per_iter"]), sig(data["missing_s_per_iter"]),
                   f"{data['missing_over_complete']:.2f}x", sig(data["per_row_s_per_iter"]),
                   f"{data['speedup_over_per_row']:.0f}x",
                   rel(data["loglik_rel_diff_vs_per_row"])]])


def missing_em_no_nan(data):
    """The same run: complete data before missing values (``--base``) and now."""
    return table(["complete data, N=" + power_of_ten(data["N"]), f"before ({data['base_commit']})",
                  "now", "now / before"],
                 [["one EM pass, s", sig(data["pass_before_s"]), sig(data["pass_now_s"]),
                   f"{data['pass_now_over_before']:.2f}"],
                  ["the input's scan (non-finite rows; now: missing cells), s",
                   sig(data["check_X_s"]), sig(data["scan_s"]),
                   f"{data['scan_s'] / data['check_X_s']:.2f}"]])


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


def ci_runs(data):
    """``benchmarks/ci_time.py --json``: fresh clones' ``make test`` and ``make demo``, every run.

    Each with empty caches (``bash .ci/run [demo]``), the venv and the install included.
    """
    def minutes(s):
        return "-" if s is None else f"{round(s) // 60} min {round(s) % 60} s"

    rows = [[f"`make {r['target']}`", r["commit"], f"{r['cpu']}, {r['cores']} cores, {r['blas']}",
             minutes(r["wall_s"]), minutes(r["pytest_s"]),
             "-" if r["pytest_s"] is None else minutes(r["wall_s"] - r["pytest_s"]),
             r["tests"], minutes(r["user_s"]), r["note"] or "-"] for r in data["runs"]]
    return table(["command", "commit", "machine", "wall", "pytest", "bootstrap and the rest",
                  "tests", "CPU user", "note"], rows)


def nuts_missing(data):
    """``benchmarks/nuts_missing.py --json``: NUTS with missing cells, both factorisations."""
    rows = [[name, f"{r['first_call_s']:.1f}", f"{r['sampling_s']:.1f}",
             f"{data['rows']['batched']['sampling_s'] / r['sampling_s']:.1f}x"]
            for name, r in data["rows"].items()]
    return table(["observed-cells factorisation", "first call (compiles) s",
                  "sampling call s", "speed-up over batched"], rows)


def nuts_missing_machine(data):
    """The case, the machine, and how far apart the two runs' posterior means of mu are."""
    return table(["case", "machine", "date", "means of mu apart"],
                 [[f"{data['data']}, N={data['N']}, d={data['d']}, K={data['K']} full, blackjax "
                   f"{data['chains']} x ({data['tune']} + {data['draws']})", data["machine"],
                   data["date"], f"{data['max_mean_difference_in_sd']:.3f} posterior sd"]])

def jax_gradient(data):
    """``benchmarks/jax_gradient.py --json``: the JAX routes' cost per gradient, then and now."""
    rows = [[r["layout"], r["d"], r["N"], f"{r['before_us']:.2f}", f"{r['now_us']:.2f}",
             f"{r['speedup']:.1f}x", f"{r['lapack_before']} / {r['lapack_now']}"]
            for r in data["rows"]]
    return table(["layout", "d", "N", f"{data['before']} us", "now us", "speed-up",
                  "LAPACK calls then / now"], rows)


def jax_gradient_machine(data):
    """The measurement's terms and machine."""
    return table(["calls", "best of", "K", "machine", "date"],
                 [[data["calls"], data["repeats"], data["K"], data["machine"], data["date"]]])


def gibbs_sweep(data):
    """``benchmarks/gibbs_sweep.py --json``: the Gibbs route's cost per sweep, then and now."""
    rows = [[r["case"], f"{r['before_us']:.0f}", f"{r['now_us']:.0f}", f"{r['speedup']:.2f}x",
             "yes" if r["same_allocations"] else "no", f"{r['values_apart']:.0e}"]
            for r in data["rows"]]
    return table(["case", f"{data['before']} us", "now us", "speed-up", "the same allocations",
                  "draws apart"], rows)


def gibbs_sweep_machine(data):
    """The measurement's terms and machine."""
    return table(["chains", "sweeps", "best of", "machine", "date"],
                 [[data["chains"], data["sweeps"], data["repeats"], data["machine"], data["date"]]])


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
    "families_speed.machine": families_speed_machine,
    "vb_vs_sklearn": vb_vs_sklearn,
    "online_em": online_em,
    "vb_vs_posterior": vb_vs_posterior,
    "vb_vs_posterior.iris": vb_vs_posterior_iris,
    "gibbs_speed": gibbs_speed,
    "gibbs_speed.iris": gibbs_speed_iris,
    "gibbs_speed.targets": gibbs_speed_targets,
    "gibbs_speed.bayesm": gibbs_speed_bayesm,
    "gibbs_speed.machine": gibbs_speed_machine,
    "missing_em": missing_em,
    "missing_em.no_nan": missing_em_no_nan,
    "select_vs_mclust": select_vs_mclust,
    "select_vs_mclust.machine": select_vs_mclust_machine,
    "ci_runs": ci_runs,
    "nuts_missing": nuts_missing,
    "nuts_missing.machine": nuts_missing_machine,
    "jax_gradient": jax_gradient,
    "jax_gradient.machine": jax_gradient_machine,
    "gibbs_sweep": gibbs_sweep,
    "gibbs_sweep.machine": gibbs_sweep_machine,
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
