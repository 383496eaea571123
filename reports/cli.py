"""The ``gmm`` command: simulate, fit, select, sample, compare, report and demo."""

from __future__ import annotations

import argparse
import contextlib
import csv
import json
import multiprocessing
import os
import shlex
import sys
import time
import warnings
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

import em
from models import COVARIANCE_TYPES, Prior, sample_params, simulate
from models.pymc import em_to_datatree
from reports.compare import compare, format_table
from reports.io import UserError, load_data, prepare_out, write_json
from reports.select import best, ranked, select_grid


class _Parser(argparse.ArgumentParser):
    def error(self, message):
        """Print one line and exit with status 2 (argparse's default prints the usage too)."""
        self.exit(2, f"gmm: error: {message} (see gmm {self.prog.split()[-1]} -h)\n")


def _check_type(value):
    if value not in COVARIANCE_TYPES:
        raise argparse.ArgumentTypeError(
            f"unknown covariance type {value!r}; use one of {', '.join(COVARIANCE_TYPES)}")
    return value


def _positive_int(value):
    try:
        v = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not an integer") from None
    if v < 1:
        raise argparse.ArgumentTypeError(f"{value!r} must be >= 1")
    return v


def build_parser():
    """The argument parser of ``gmm``."""
    p = _Parser(prog="gmm", description="Gaussian mixtures by EM and by PyMC, with ArviZ reports.")
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser)

    def common(sp, data=True):
        if data:
            sp.add_argument("data", help="CSV file (with header), .npy file, or 'faithful'/'iris'")
            sp.add_argument("--columns", help="comma-separated CSV columns to use")
        sp.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
        sp.add_argument("--out", help="results folder (default reports/out/<name>/)")
        sp.add_argument("--force", action="store_true", help="overwrite an existing results folder")

    def model(sp, k_default=2):
        sp.add_argument("-k", "--components", type=_positive_int, default=k_default)
        sp.add_argument("--covariance-type", type=_check_type, default="full")

    def mcmc(sp):
        sp.add_argument("--draws", type=_positive_int, default=1000)
        sp.add_argument("--tune", type=_positive_int, default=1000)
        sp.add_argument("--chains", type=_positive_int, default=4)
        sp.add_argument("--sampler", choices=("numba", "c", "nutpie"), default="numba")

    s = sub.add_parser("simulate", help="write a CSV of draws with a z column")
    common(s, data=False)
    model(s, 3)
    s.add_argument("-n", "--n-samples", type=_positive_int, default=500)
    s.add_argument("-d", "--dim", type=_positive_int, default=2)
    s.add_argument("--params", help="em.nc written by 'gmm fit' (default: draw from a prior)")

    s = sub.add_parser("fit", help="EM (ML, or MAP with --map); writes em.nc")
    common(s)
    model(s)
    s.add_argument("--map", action="store_true", help="MAP under mclust's default prior")
    s.add_argument("--n-init", type=_positive_int, default=5)
    s.add_argument("--max-iter", type=_positive_int, default=1000)

    s = sub.add_parser("select", help="BIC/ICL over K = 1..kmax and covariance types")
    common(s)
    s.add_argument("--kmax", type=_positive_int, default=5)
    s.add_argument("--criterion", choices=("bic", "icl"), default="bic")
    s.add_argument("--map", action="store_true")

    s = sub.add_parser("sample", help="NUTS from EM; writes posterior.nc")
    common(s)
    model(s)
    mcmc(s)

    s = sub.add_parser("compare", help="EM against the posterior, scalar by scalar")
    common(s)
    model(s)
    mcmc(s)

    s = sub.add_parser("report", help="render index.html from a results folder")
    s.add_argument("folder")

    s = sub.add_parser("demo", help="the main job on Old Faithful")
    common(s, data=False)
    s.add_argument("--kmax", type=_positive_int, default=4)
    mcmc(s)
    return p


def _out(args, name):
    out = args.out or f"reports/out/{name}"
    return prepare_out(out, args.force)


def _data(args):
    cols = None if not getattr(args, "columns", None) else args.columns.split(",")
    X, names = load_data(args.data, cols)
    return X, names, Path(args.data).stem


def _record(args, names, **extra):
    from models.pymc import _versions

    return {"command": "gmm " + " ".join(shlex.quote(a) for a in sys.argv[1:]),
            "seed": args.seed, "columns": names, "versions": _versions(), **extra}


def _fit(X, args, use_map, progress=True):
    prior = Prior.default(X, args.components, args.covariance_type) if use_map else None
    return em.fit(X, args.components, args.covariance_type, prior=prior,
                  n_init=getattr(args, "n_init", 5), max_iter=getattr(args, "max_iter", 1000),
                  random_state=args.seed, progress=progress)


def _params_table(params, names):
    rows = []
    full = params.to_full()
    for k in range(params.K):
        row = {"component": k, "pi": params.pi[k]}
        for j, n in enumerate(names):
            row[f"mu[{n}]"] = params.mu[k, j]
        for j, n in enumerate(names):
            row[f"sd[{n}]"] = float(np.sqrt(full.Sigma[k, j, j]))
        rows.append(row)
    return rows


def cmd_simulate(args):
    """Run `gmm simulate`: draw a data set with its labels."""
    if args.params:
        import xarray as xr

        from models.pymc import point_to_params

        tree = xr.open_datatree(args.params)
        post = tree["posterior"]
        params = point_to_params({v: post[v].values[0, 0] for v in ("pi", "mu", "Sigma")},
                                 tree.attrs["covariance_type"])
    else:
        d = args.dim
        prior = Prior(alpha=2.0, m0=np.zeros(d), kappa0=0.05, nu0=d + 3.0, Psi0=np.eye(d) * (d + 3))
        params = sample_params(prior, args.components, d, args.covariance_type, args.seed)
    out = _out(args, "simulate")
    X, z = simulate(params, args.n_samples, rng=args.seed + 1)
    with open(out / "simulated.csv", "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow([f"x{j}" for j in range(X.shape[1])] + ["z"])
        for x, zi in zip(X, z):
            w.writerow([repr(float(v)) for v in x] + [int(zi)])
    write_json(out / "params.json", {"pi": params.pi, "mu": params.mu, "Sigma": params.Sigma,
                                     "covariance_type": params.covariance_type})
    print(f"wrote {X.shape[0]} draws from a {params.K}-component {params.covariance_type} "
          f"mixture to {out / 'simulated.csv'}")


def cmd_fit(args):
    """Run `gmm fit`: EM and its DataTree."""
    X, names, stem = _data(args)
    out = _out(args, f"fit-{stem}")
    res = _fit(X, args, args.map)
    dt = em_to_datatree(res, X)
    dt.attrs["columns"] = json.dumps(names)
    dt.to_netcdf(out / "em.nc")
    write_json(out / "run.json", _record(args, names, method=dt.attrs["method"]))
    print(format_table(_params_table(res.params, names)))
    print(f"log-likelihood {res.log_likelihood:.6f}  BIC {res.bic:.4f}  AIC {res.aic:.4f}  "
          f"ICL {res.icl:.4f}  iterations {res.n_iter}  converged {res.converged}")
    print(f"wrote {out / 'em.nc'}")


def cmd_select(args):
    """Run `gmm select`: the BIC/ICL grid."""
    X, names, stem = _data(args)
    out = _out(args, f"select-{stem}")
    rows = select_grid(X, args.kmax, use_prior=args.map, random_state=args.seed, progress=True)
    _write_rows(out / "select.csv", rows)
    from reports import figures

    figures.selection(out / "select.png", [r for r in rows if np.isfinite(r["bic"])])
    top = best(rows, args.criterion)
    print(format_table(ranked(rows, args.criterion)[:10],
                       ["K", "covariance_type", "log_likelihood", "n_parameters", "bic", "icl"]))
    print(f"best by {args.criterion.upper()}: K={top['K']} {top['covariance_type']}")
    print(f"wrote {out / 'select.csv'} and {out / 'select.png'}")


def _sample(X, K, covariance_type, args, progressbar=True, **kw):
    from models import pymc as gmm_pymc

    prior = Prior.default(X, K, covariance_type)
    return gmm_pymc.sample(X, K, covariance_type, prior=prior, draws=args.draws, tune=args.tune,
                           chains=args.chains, random_seed=args.seed, sampler=args.sampler,
                           progressbar=progressbar, **kw)


def _sample_neighbours(X, Ks, covariance_type, args, out, progressbar=True):
    """Sample each K in ``Ks`` (the LOO table's neighbours) into ``out/posterior_K{K}.nc``.

    Returns
    -------
    dict
        ``{"sample_K{K}_s": seconds}``.
    """
    timings = {}
    for K in Ks:
        t = time.perf_counter()
        dt = _sample(X, K, covariance_type, args, progressbar=progressbar)
        dt.to_netcdf(out / f"posterior_K{K}.nc")
        timings[f"sample_K{K}_s"] = time.perf_counter() - t
    return timings


def cmd_sample(args):
    """Run `gmm sample`: NUTS from EM."""
    X, names, stem = _data(args)
    out = _out(args, f"sample-{stem}")
    dt = _sample(X, args.components, args.covariance_type, args, posterior_predictive=True)
    dt.to_netcdf(out / "posterior.nc")
    write_json(out / "run.json", _record(args, names))
    import arviz as az

    print(az.summary(dt, var_names=["pi", "mu", "Sigma"]).to_string())
    print(f"divergences: {int(dt['sample_stats']['diverging'].sum())}")
    print(f"wrote {out / 'posterior.nc'}")


def cmd_compare(args):
    """Run `gmm compare`: EM against the posterior."""
    X, names, stem = _data(args)
    out = _out(args, f"compare-{stem}")
    mle, mapped = _fit(X, args, False), _fit(X, args, True)
    em_mle, em_map = em_to_datatree(mle, X), em_to_datatree(mapped, X)
    dt = _sample(X, args.components, args.covariance_type, args, init=mapped.params,
                 posterior_predictive=True)
    for name, tree in (("em_mle", em_mle), ("em_map", em_map), ("posterior", dt)):
        tree.to_netcdf(out / f"{name}.nc")
    rows, agreement = compare(em_map, dt, em_mle_dt=em_mle)
    _write_rows(out / "comparison.csv", rows)
    write_json(out / "run.json", _record(args, names, agreement=agreement))
    print(format_table(rows, ["parameter", "em_mle", "em", "mean", "sd", "lower", "upper",
                              "inside", "r_hat", "ess_bulk"]))
    print("responsibilities: mean |EM - posterior| = {mean_abs_gamma_diff:.4g}, max = "
          "{max_abs_gamma_diff:.4g}, same label {label_agreement:.1%}".format(**agreement))
    print(f"wrote {out / 'comparison.csv'}")


def _write_rows(path, rows):
    with open(path, "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)


def cmd_report(args):
    """Run `gmm report`: render a results folder."""
    from reports.html import render

    path = render(args.folder)
    print(f"report: {path}")


def cmd_demo(args):
    """Run `gmm demo`: select by BIC, fit MLE and MAP, sample, compare, report."""
    from reports.html import render

    t0 = time.perf_counter()
    timings = {}
    args.data, args.columns = "faithful", None
    X, names, _ = _data(args)
    out = _out(args, "demo")
    rows = select_grid(X, args.kmax, random_state=args.seed, progress=True)
    _write_rows(out / "select.csv", rows)
    top = best(rows, "bic")
    K, ct = top["K"], top["covariance_type"]
    timings["select_s"] = time.perf_counter() - t0
    print(f"[1/5] best by BIC: K={K} {ct} (BIC {top['bic']:.2f})")
    args.components, args.covariance_type = K, ct
    mle, mapped = _fit(X, args, False, progress=False), _fit(X, args, True, progress=False)
    em_mle, em_map = em_to_datatree(mle, X), em_to_datatree(mapped, X)
    em_mle.to_netcdf(out / "em_mle.nc")
    em_map.to_netcdf(out / "em_map.nc")
    print(f"[2/5] EM MLE log-lik {mle.log_likelihood:.3f}; MAP log-posterior "
          f"{mapped.log_posterior:.3f}")
    # the neighbours only feed the LOO table: 2 chains x 500 draws are plenty for PSIS-LOO. With
    # two cores they sample in a second process while this one samples the chosen model.
    short = argparse.Namespace(**{**vars(args), "chains": min(args.chains, 2),
                                  "draws": min(args.draws, 500), "tune": min(args.tune, 500)})
    neighbours = [K2 for K2 in (K - 1, K + 1) if 1 <= K2 <= args.kmax]
    parallel = bool(neighbours) and (os.cpu_count() or 1) >= 2
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) \
            if parallel else contextlib.nullcontext() as pool:
        if parallel:
            loo = pool.submit(_sample_neighbours, X, neighbours, ct, short, out, False)
        t1 = time.perf_counter()
        dt = _sample(X, K, ct, args, init=mapped.params, posterior_predictive=True)
        dt.to_netcdf(out / "posterior.nc")
        dt.to_netcdf(out / f"posterior_K{K}.nc")
        timings["sample_s"] = time.perf_counter() - t1
        timings.update(loo.result() if parallel else
                       _sample_neighbours(X, neighbours, ct, short, out))
    wait = time.perf_counter() - t1 - timings["sample_s"]
    line = f"[3/5] NUTS: {args.chains} chains x {args.draws} draws in {timings['sample_s']:.1f} s"
    if neighbours:
        loo_s = sum(timings[f"sample_K{K2}_s"] for K2 in neighbours)
        where = (f"alongside in a second process, {wait:.1f} s more" if parallel else "after it")
        line += (f" (K = {', '.join(map(str, neighbours))} for the LOO table, {short.chains} x "
                 f"{short.draws}: {loo_s:.1f} s, {where})")
    print(line)
    rows_c, agreement = compare(em_map, dt, em_mle_dt=em_mle)
    _write_rows(out / "comparison.csv", rows_c)
    worst = max(r["r_hat"] for r in rows_c)
    print(f"[4/5] max r_hat {worst:.4f}; mean |EM gamma - posterior| "
          f"{agreement['mean_abs_gamma_diff']:.4f}")
    timings["total_before_report_s"] = time.perf_counter() - t0
    write_json(out / "run.json", _record(
        args, names, title=f"Old Faithful: K={K} {ct} by EM and NUTS", model=f"K={K} {ct}",
        timings=timings, label_alignment=f"{dt.attrs.get('relabel_draws_permuted', 0)} draws "
        "permuted onto the EM MAP labels (Hungarian matching)", agreement=agreement))
    path = render(out)
    print(f"[5/5] report: {path} ({time.perf_counter() - t0:.0f} s in all)")


COMMANDS = {"simulate": cmd_simulate, "fit": cmd_fit, "select": cmd_select, "sample": cmd_sample,
            "compare": cmd_compare, "report": cmd_report, "demo": cmd_demo}


def main(argv=None):
    """Entry point of the ``gmm`` console script.

    Parameters
    ----------
    argv : list of str or None

    Returns
    -------
    int
        Exit status: 0 on success, 2 on bad input.
    """
    args = build_parser().parse_args(argv)
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="PyTensor could not link to a BLAS")
            COMMANDS[args.command](args)
    except (UserError, ValueError, TypeError, FileNotFoundError) as exc:
        msg = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        print(f"gmm: error: {msg}", file=sys.stderr)
        return 2
    return 0


def run():
    """Console-script wrapper: exit with :func:`main`'s status."""
    sys.exit(main())


if __name__ == "__main__":  # pragma: no cover
    run()
