"""The ``gmm`` command: simulate, fit, select, sample, compare, predict, report and demo.

Every command that writes results writes them through :class:`reports.io.ResultsFolder`:
into a temporary folder first, then moved into place, so nothing is half-written and nothing
gmm did not write is replaced.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.metadata
import multiprocessing
import os
import shlex
import shutil
import sys
import threading
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr
from tqdm import tqdm

import em
from models import COVARIANCE_TYPES, MCLUST_NAMES, SKLEARN_TYPES, Prior, sample_params, simulate
from models.pymc import DEFAULT_SAMPLER, JAX_SAMPLERS, SAMPLERS, _versions, point_to_datatree, point_to_params
from reports import figures, interrupt, joint
from reports.compare import align, as_frame, compare, format_table, sampling_problems, summary
from reports.html import render, sections
from reports.io import (
    ResultsFolder,
    UserError,
    columns_present,
    dataset_name,
    load_data,
    split_names,
    write_json,
)
from reports.joint import em_to_datatree
from reports.select import best, bic_table, ranked, select_grid

OUT_ROOT = Path("reports/out")
MAX_PREDICTIVE_VALUES = 25_000_000     # posterior_predictive above this (200 MB) is left out


class _Formatter(argparse.RawDescriptionHelpFormatter):
    """Help with each option's default (unless it states its own), descriptions kept as written."""

    def _get_help_string(self, action):
        text = action.help or ""
        if ("default" in text or any(action.default is v for v in (None, False, argparse.SUPPRESS))
                or not action.option_strings):
            return text
        return f"{text} (default: %(default)s)"


class _Parser(argparse.ArgumentParser):
    def error(self, message):
        """Print one line and exit with status 2 (argparse's default prints the usage too)."""
        self.exit(2, f"gmm: error: {message} (see gmm {self.prog.split()[-1]} -h)\n")


def _positive_int(value):
    try:
        v = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not an integer") from None
    if v < 1:
        raise argparse.ArgumentTypeError(f"{value!r} must be >= 1")
    return v


def _types(value):
    types = split_names(value) or []
    unknown = [t for t in types if t not in COVARIANCE_TYPES]
    if unknown or not types:
        raise argparse.ArgumentTypeError(
            f"unknown covariance type(s) {unknown or value!r}; use a comma-separated list of "
            f"{', '.join(COVARIANCE_TYPES)}")
    return types


def _version():
    try:
        return importlib.metadata.version("gmm-suite")
    except importlib.metadata.PackageNotFoundError:  # pragma: no cover - running from a checkout
        return "unknown"


def build_parser():
    """The argument parser of ``gmm``."""
    p = _Parser(prog="gmm", formatter_class=_Formatter,
                description="Gaussian mixtures by EM and by PyMC, with ArviZ reports.\n\n"
                "Results go to a folder of their own (default reports/out/<command>-<data>-K<k>-"
                "<type>). It is written in full or not at all. --force replaces only files an "
                "earlier gmm run wrote there; gmm never replaces or deletes anything else.")
    p.add_argument("--version", action="version", version=f"gmm {_version()}")
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser,
                           metavar="COMMAND")

    def command(name, summary_line, description):
        return sub.add_parser(name, help=summary_line, description=f"{summary_line}.\n\n{description}",
                              formatter_class=_Formatter)

    def data(sp):
        sp.add_argument("data", help="CSV file with a header row, a .npy file, or an embedded "
                        "dataset: 'faithful' or 'iris'")
        sp.add_argument("--columns", help="comma-separated columns to use, in this order "
                        "(default: all)")
        sp.add_argument("--exclude", help="comma-separated columns to leave out, e.g. a label "
                        "column (default: none)")

    def out(sp, default):
        sp.add_argument("--out", help=f"results folder (default: {default})")
        sp.add_argument("--force", action="store_true", help="replace the files an earlier gmm "
                        "run wrote in --out; other files there are kept")

    def seed(sp):
        sp.add_argument("--seed", type=int, default=0, help="random seed")

    def model(sp, k_required=True):
        if k_required:
            sp.add_argument("-k", "--components", type=_positive_int, required=True,
                            help="number of components K (required; 'gmm select' chooses one)")
        sp.add_argument("--covariance-type", choices=COVARIANCE_TYPES, default="full",
                        help="covariance structure (tied = one shared covariance)")

    def mcmc(sp):
        sp.add_argument("--draws", type=_positive_int, default=1000, help="draws per chain")
        sp.add_argument("--tune", type=_positive_int, default=1000, help="tuning steps per chain")
        sp.add_argument("--chains", type=_positive_int, default=4, help="chains")
        sp.add_argument("--sampler", choices=SAMPLERS, default=DEFAULT_SAMPLER,
                        help="blackjax's (default) or numpyro's NUTS on JAX, all chains in one "
                        "vectorised program; PyMC's NUTS on PyTensor's numba or C backend; or "
                        "nutpie on its numba or JAX backend (pip install 'gmm-suite[nutpie]')")
        sp.add_argument("--cores", type=_positive_int, default=None,
                        help="processes the chains run in on the numba, c and nutpie routes "
                        "(default: every available core, at most one per chain; the JAX routes "
                        "vectorise the chains instead); the draws do not depend on it")

    default = "reports/out/{command}-<data>-K<k>-<type>"
    s = command("simulate", "Draw a data set from a mixture", "Writes simulated.csv (columns "
                "x0.., z), params.json and simulated.nc (the true mixture, for gmm report).")
    out(s, "reports/out/simulate-n<n>-d<d>-K<k>-<type>")
    seed(s)
    s.add_argument("-k", "--components", type=_positive_int, default=3,
                   help="number of components K of the mixture drawn from the prior")
    s.add_argument("--covariance-type", choices=COVARIANCE_TYPES, default="full",
                   help="covariance structure of the mixture drawn from the prior")
    s.add_argument("-n", "--n-samples", type=_positive_int, default=500, help="observations")
    s.add_argument("-d", "--dim", type=_positive_int, default=2, help="dimension")
    s.add_argument("--params", help="draw from the fit in this em.nc (or its folder) instead of "
                   "a mixture drawn from the prior; -k, -d and --covariance-type then follow it")

    s = command("fit", "Fit by EM", "Maximum likelihood, or MAP under mclust's default prior "
                "with --map. Writes em.nc (an ArviZ DataTree) and run.json.")
    data(s)
    model(s)
    out(s, default.format(command="fit"))
    seed(s)
    s.add_argument("--map", action="store_true", help="MAP under mclust's default conjugate prior")
    s.add_argument("--n-init", type=_positive_int, default=5, help="EM restarts (best wins)")
    s.add_argument("--max-iter", type=_positive_int, default=1000, help="EM iterations per restart")

    s = command("select", "Choose K and the covariance type by BIC or ICL",
                "Fits every K in --kmin..--kmax and every type in --types (as mclust's "
                "mclustBIC). Writes select.csv (one row per fit, failures included), select.png "
                "and em.nc (the best fit).")
    data(s)
    out(s, "reports/out/select-<data>-K<kmin>-<kmax>-<types>")
    seed(s)
    s.add_argument("--kmin", type=_positive_int, default=1, help="smallest K")
    s.add_argument("--kmax", type=_positive_int, default=9, help="largest K")
    s.add_argument("--types", type=_types, default=list(MCLUST_NAMES),
                   help=f"comma-separated covariance types (choices: {', '.join(COVARIANCE_TYPES)}; "
                   "default: mclust's 14 models)")
    s.add_argument("--criterion", choices=("bic", "icl"), default="bic",
                   help="criterion to minimise (scikit-learn's sign)")
    s.add_argument("--map", action="store_true", help="MAP fits under mclust's default prior")

    s = command("sample", "Sample the posterior with NUTS, started from EM",
                "Writes posterior.nc (posterior, sample_stats, log_likelihood, "
                "posterior_predictive, responsibilities) and run.json. Warns when r_hat > 1.01 "
                "or there are divergences.")
    data(s)
    model(s)
    out(s, default.format(command="sample"))
    seed(s)
    mcmc(s)

    s = command("compare", "Compare EM (MLE and MAP) with the posterior, scalar by scalar",
                "Writes em_mle.nc, em_map.nc and posterior.nc (all on the posterior's labels), "
                "comparison.csv and run.json.")
    data(s)
    model(s)
    out(s, default.format(command="compare"))
    seed(s)
    mcmc(s)

    s = command("predict", "Classify new data with a saved model",
                "RESULTS is a results folder, or its em.nc / posterior.nc. Writes predict.csv: one "
                "row per observation with the most likely component, its uncertainty (1 - max "
                "gamma, as mclust reports) and gamma for every component. From a posterior, gamma "
                "is averaged over the draws. By default the model's own columns are taken from "
                "DATA by name.")
    s.add_argument("results", help="results folder, or an em.nc / posterior.nc file")
    data(s)
    out(s, "reports/out/predict-<data>-K<k>-<type>")

    s = command("report", "Render index.html from a results folder",
                "Works on every folder gmm writes (fit, select, sample, compare, predict, "
                "simulate, demo) and data of any dimension. Writes index.html and its PNGs into "
                "the folder. It replaces only an earlier report's files.")
    s.add_argument("folder", help="results folder")

    s = command("demo", "Run the whole pipeline on Old Faithful",
                "Selects K and the type by BIC, fits the MLE and MAP, samples, compares, and "
                "renders the report.")
    out(s, "reports/out/demo")
    seed(s)
    s.add_argument("--kmax", type=_positive_int, default=4, help="largest K in the selection")
    mcmc(s)
    return p


# ---------------------------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------------------------
def _target(args, name):
    return Path(args.out) if args.out else OUT_ROOT / name


def _model_name(args, data_name):
    return f"{args.command}-{data_name}-K{args.components}-{args.covariance_type}"


def _data(args):
    X, names = load_data(args.data, split_names(args.columns), split_names(args.exclude))
    return X, names, dataset_name(args.data)


def _record(args, names, **extra):
    return {"command": "gmm " + " ".join(shlex.quote(a) for a in sys.argv[1:]),
            "seed": getattr(args, "seed", None), "columns": names, "versions": _versions(),
            **extra}


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


def _write_rows(path, rows):
    as_frame(rows).to_csv(path, index=False, na_rep="nan")


def _sample(X, K, covariance_type, args, names, progressbar=True, **kw):
    prior = Prior.default(X, K, covariance_type)
    dt = joint.sample(X, K, covariance_type, prior=prior, draws=args.draws, tune=args.tune,
                         chains=args.chains, random_seed=args.seed, sampler=args.sampler,
                         cores=args.cores, progressbar=progressbar, feature_names=names, **kw)
    return dt


def _wants_predictive(X, args):
    """Whether the posterior predictive (chains x draws data sets) fits in the budget."""
    size = args.chains * args.draws * X.size
    if size > MAX_PREDICTIVE_VALUES:
        print(f"note: no posterior_predictive group: {args.chains} x {args.draws} replicates of "
              f"{X.shape[0]} x {X.shape[1]} data would hold {size:.2g} values (limit "
              f"{MAX_PREDICTIVE_VALUES:.2g}); lower --draws to get it.")
        return False
    return True


def _warn_sampling(dt):
    problems = sampling_problems(dt)
    if problems:
        print(f"warning: {problems}: the draws may not represent the posterior; sample longer "
              "(--tune, --draws) or check the model.")


# ---------------------------------------------------------------------------------------------
# Commands
# ---------------------------------------------------------------------------------------------
def cmd_simulate(args):
    """Run `gmm simulate`: draw a data set with its labels."""
    if args.params:
        path = Path(args.params)
        path = path / "em.nc" if path.is_dir() else path
        if not path.is_file():
            raise UserError(f"--params {args.params!r}: no em.nc there; pass the em.nc that "
                            "'gmm fit' wrote, or its folder.")
        tree = xr.open_datatree(path)
        post = tree["posterior"]
        params = point_to_params({v: post[v].values[0, 0] for v in ("pi", "mu", "Sigma")},
                                 tree.attrs["covariance_type"])
    else:
        d = args.dim
        prior = Prior(alpha=2.0, m0=np.zeros(d), kappa0=0.05, nu0=d + 3.0, Psi0=np.eye(d) * (d + 3))
        params = sample_params(prior, args.components, d, args.covariance_type, args.seed)
    name = f"simulate-n{args.n_samples}-d{params.d}-K{params.K}-{params.covariance_type}"
    target = _target(args, name)
    with ResultsFolder(target, args.force, "simulate") as folder:
        X, z = simulate(params, args.n_samples, rng=args.seed + 1)
        names = [f"x{j}" for j in range(X.shape[1])]
        pd.DataFrame(X, columns=names).assign(z=z).to_csv(folder.path / "simulated.csv",
                                                          index=False)
        write_json(folder.path / "params.json", {"pi": params.pi, "mu": params.mu,
                                                 "Sigma": params.Sigma,
                                                 "covariance_type": params.covariance_type})
        truth = point_to_datatree(params, X, names)
        truth.attrs["method"] = "truth"
        truth.to_netcdf(folder.path / "simulated.nc")
        write_json(folder.path / "run.json", _record(args, names, title=f"Simulated: {name}"))
    print(f"wrote {X.shape[0]} draws from a {params.K}-component {params.covariance_type} "
          f"mixture to {target / 'simulated.csv'}")


def cmd_fit(args):
    """Run `gmm fit`: EM and its DataTree."""
    X, names, stem = _data(args)
    target = _target(args, _model_name(args, stem))
    with ResultsFolder(target, args.force, "fit") as folder:
        res = _fit(X, args, args.map)
        dt = em_to_datatree(res, X, names)
        dt.to_netcdf(folder.path / "em.nc")
        write_json(folder.path / "run.json", _record(
            args, names, method=dt.attrs["method"],
            title=f"{stem}: K={args.components} {args.covariance_type} by EM"))
    print(format_table(_params_table(res.params, names)))
    print(f"log-likelihood {res.log_likelihood:.6f}  BIC {res.bic:.4f}  AIC {res.aic:.4f}  "
          f"ICL {res.icl:.4f}  iterations {res.n_iter}  converged {res.converged}")
    print(f"wrote {target / 'em.nc'}")


def cmd_select(args):
    """Run `gmm select`: the BIC/ICL grid."""
    if args.kmin > args.kmax:
        raise UserError(f"--kmin {args.kmin} is above --kmax {args.kmax}; swap them.")
    X, names, stem = _data(args)
    types = "all" if list(args.types) == list(MCLUST_NAMES) else "+".join(args.types)
    target = _target(args, f"select-{stem}-K{args.kmin}-{args.kmax}-{types}")
    with ResultsFolder(target, args.force, "select") as folder:
        rows, fits = select_grid(X, args.kmax, args.types, use_prior=args.map,
                                 random_state=args.seed, progress=True, k_min=args.kmin,
                                 return_fits=True)
        _write_rows(folder.path / "select.csv", rows)
        figures.selection(folder.path / "select.png", [r for r in rows if np.isfinite(r["bic"])])
        top = best(rows, args.criterion)
        res = fits[top["K"], top["covariance_type"]]
        em_to_datatree(res, X, names).to_netcdf(folder.path / "em.nc")
        write_json(folder.path / "run.json", _record(
            args, names, title=f"{stem}: model selection by {args.criterion.upper()}",
            model=f"K={top['K']} {top['covariance_type']}"))
    print(bic_table(rows, args.criterion))
    for r in rows:
        if r["error"]:
            print(f"failed: K={r['K']} {r['covariance_type']}: {r['error']}")
    print(format_table(ranked(rows, args.criterion)[:3],
                       ["K", "covariance_type", "log_likelihood", "n_parameters", "bic", "icl"]))
    print(f"best by {args.criterion.upper()}: K={top['K']} {top['covariance_type']}")
    print(f"wrote {target / 'select.csv'}, {target / 'select.png'} and {target / 'em.nc'} "
          "(the best fit)")


def cmd_sample(args):
    """Run `gmm sample`: NUTS from EM."""
    X, names, stem = _data(args)
    target = _target(args, _model_name(args, stem))
    with ResultsFolder(target, args.force, "sample") as folder:
        dt = _sample(X, args.components, args.covariance_type, args, names,
                     posterior_predictive=_wants_predictive(X, args))
        dt.to_netcdf(folder.path / "posterior.nc")
        write_json(folder.path / "run.json", _record(
            args, names, title=f"{stem}: K={args.components} {args.covariance_type} by NUTS"))
    print(summary(dt).to_string())
    print(f"divergences: {int(dt['sample_stats']['diverging'].sum())}")
    _warn_sampling(dt)
    print(f"wrote {target / 'posterior.nc'}")


def _em_pair(X, args, names):
    """EM MLE and MAP, the MLE on the MAP's (so the posterior's) labels, and their trees."""
    mle, mapped = _fit(X, args, False, progress=False), _fit(X, args, True, progress=False)
    mle = align(mle, mapped.params)
    return mle, mapped, em_to_datatree(mle, X, names), em_to_datatree(mapped, X, names)


def cmd_compare(args):
    """Run `gmm compare`: EM against the posterior."""
    X, names, stem = _data(args)
    target = _target(args, _model_name(args, stem))
    with ResultsFolder(target, args.force, "compare") as folder:
        mle, mapped, em_mle, em_map = _em_pair(X, args, names)
        dt = _sample(X, args.components, args.covariance_type, args, names, init=mapped.params,
                     posterior_predictive=_wants_predictive(X, args))
        for name, tree in (("em_mle", em_mle), ("em_map", em_map), ("posterior", dt)):
            tree.to_netcdf(folder.path / f"{name}.nc")
        rows, agreement = compare(em_map, dt, em_mle_dt=em_mle)
        _write_rows(folder.path / "comparison.csv", rows)
        write_json(folder.path / "run.json", _record(
            args, names, agreement=agreement,
            title=f"{stem}: K={args.components} {args.covariance_type} by EM and NUTS"))
    print(format_table(rows, ["parameter", "em_mle", "em", "mean", "sd", "lower", "upper",
                              "inside", "r_hat", "ess_bulk"]))
    print("responsibilities: mean |EM - posterior| = {mean_abs_gamma_diff:.4g}, max = "
          "{max_abs_gamma_diff:.4g}, same label {label_agreement:.1%}".format(**agreement))
    _warn_sampling(dt)
    print(f"wrote {target / 'comparison.csv'}")


def _load_model(source):
    """The tree a prediction uses: a folder's posterior.nc, else its EM fit; or the file given."""
    path = Path(source)
    if path.is_dir():
        for name in ("posterior.nc", "em.nc", "em_map.nc", "em_mle.nc"):
            if (path / name).is_file():
                return path / name, xr.open_datatree(path / name)
        raise UserError(f"{source!r} holds no model (posterior.nc or em.nc); run gmm fit or gmm "
                        "sample first.")
    if path.is_file() and path.suffix == ".nc":
        return path, xr.open_datatree(path)
    raise UserError(f"results {source!r} is neither a results folder nor an .nc file.")


def predict_gamma(tree, X):
    """Responsibilities of new data: at the EM fit, or averaged over the posterior's draws.

    Parameters
    ----------
    tree : xarray.DataTree
        ``em.nc`` or ``posterior.nc``.
    X : ndarray of shape (N, d)

    Returns
    -------
    gamma : ndarray of shape (N, K)
    mean : GMMParams
        The parameters a figure shows: the EM fit, or the posterior mean.
    """
    post = tree["posterior"]
    ct = tree.attrs["covariance_type"]
    gamma, n = 0.0, 0
    for c in range(post.sizes["chain"]):
        for t in range(post.sizes["draw"]):
            p = point_to_params({v: post[v].values[c, t] for v in ("pi", "mu", "Sigma")}, ct)
            gamma = gamma + np.exp(em.e_step(X, p)[0])
            n += 1
    mean = point_to_params({v: post[v].values.mean(axis=(0, 1)) for v in ("pi", "mu", "Sigma")},
                           ct)
    return gamma / n, mean


def cmd_predict(args):
    """Run `gmm predict`: classify new data with a saved model."""
    path, tree = _load_model(args.results)
    model_names = [str(v) for v in tree["observed_data"]["feature"].values]
    columns = split_names(args.columns) or columns_present(args.data, model_names)
    X, names = load_data(args.data, columns, split_names(args.exclude))
    if X.shape[1] != len(model_names):
        raise UserError(f"the model in {str(path)!r} has {len(model_names)} features "
                        f"({', '.join(model_names)}) but the data give {X.shape[1]} "
                        f"({', '.join(names)}); choose them with --columns.")
    K, ct = tree.attrs["n_components"], tree.attrs["covariance_type"]
    gamma, mean = predict_gamma(tree, X)
    source = "posterior" if tree.attrs.get("method") == "nuts" else "EM fit"
    target = _target(args, f"predict-{dataset_name(args.data)}-K{K}-{ct}")
    with ResultsFolder(target, args.force, "predict") as folder:
        label = gamma.argmax(axis=1)
        rows = [{"row": i + 1, "component": int(label[i]), "uncertainty": 1.0 - gamma[i].max(),
                 **{f"gamma_{k}": gamma[i, k] for k in range(K)}} for i in range(X.shape[0])]
        _write_rows(folder.path / "predict.csv", rows)
        pred = point_to_datatree(mean, X, names, gamma=gamma)
        pred.attrs.update({"method": f"predict from {source}", "model": str(path)})
        pred.to_netcdf(folder.path / "predict.nc")
        write_json(folder.path / "run.json", _record(
            args, names, title=f"{dataset_name(args.data)} classified by {path}", model=str(path)))
    counts = np.bincount(label, minlength=K)
    print(f"classified {X.shape[0]} observations with the {source} in {path} (K={K} {ct}): "
          + ", ".join(f"component {k}: {counts[k]}" for k in range(K))
          + f"; mean uncertainty {np.mean(1 - gamma.max(axis=1)):.4f}")
    print(f"wrote {target / 'predict.csv'}")


def cmd_report(args):
    """Run `gmm report`: render a results folder."""
    folder = Path(args.folder)
    if not folder.is_dir():
        raise UserError(f"results folder {args.folder!r} does not exist or is not a folder.")
    with ResultsFolder(folder, command="report", update=True) as out:
        render(folder, out.path)
    print(f"report: {folder / 'index.html'}")


def _ignore_sigint():
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _helper_ready(sampler):
    """Start a helper process: Ctrl-C is the parent's to handle; import the sampler.

    The imports take several seconds, spent while the parent selects the model. JAX only for a
    JAX route: once JAX's threads run, PyMC's routes run their chains one after another.
    """
    _ignore_sigint()
    # tqdm's default lock is a process lock: a named semaphore that the resource tracker reports
    # as leaked when a Ctrl-C terminates this process. It draws no bars; a thread lock will do.
    tqdm.set_lock(threading.RLock())
    importlib.import_module("models.pymc.jax_routes" if sampler in JAX_SAMPLERS else "pymc")


def _sample_neighbours(X, Ks, covariance_type, args, names, out, progressbar=True):
    """Sample each K in ``Ks`` (the LOO table's neighbours) into ``out/posterior_K{K}.nc``.

    Returns
    -------
    dict
        ``{"sample_K{K}_s": seconds}``.
    """
    timings = {}
    for K in Ks:
        t = time.perf_counter()
        dt = _sample(X, K, covariance_type, args, names, progressbar=progressbar)
        dt.to_netcdf(out / f"posterior_K{K}.nc")
        timings[f"sample_K{K}_s"] = time.perf_counter() - t
    return timings


def cmd_demo(args):
    """Run `gmm demo`: select by BIC, fit MLE and MAP, sample, compare, report."""
    t0 = time.perf_counter()
    timings = {}
    args.data, args.columns, args.exclude = "faithful", None, None
    X, names, _ = _data(args)
    target = _target(args, "demo")
    # With two cores a helper process samples the LOO table's neighbours (K + 1, the overfitted
    # and dearest one, then K - 1) while this one fits the EM pair, samples the chosen model,
    # compares and draws its figures; it starts now, so that its imports overlap the selection.
    pool = (multiprocessing.get_context("spawn").Pool(1, _helper_ready, (args.sampler,))
            if (os.cpu_count() or 1) >= 2 else None)
    try:
        with ResultsFolder(target, args.force, "demo") as folder:
            out = folder.path
            _demo(X, names, args, out, pool, t0, timings)
    except BaseException:
        if pool is not None:        # Ctrl-C or an error: stop the helper where it is
            pool.terminate()
            pool.join()
        raise
    if pool is not None:
        # its work is done: let it exit on its own rather than terminate it, so that its
        # libraries clean up after themselves. _demo closed it as soon as the neighbours were
        # in, so its 1.4-1.7 s of shutdown overlap the report rather than follow it.
        pool.close()
        pool.join()
    print(f"[5/5] report: {target / 'index.html'} ({time.perf_counter() - t0:.0f} s in all)")


def _demo(X, names, args, out, pool, t0, timings):
    """The demo's steps, writing into ``out``; ``pool`` (or None) samples a neighbour."""
    # the demo samples its choice with PyMC: choose among the families the PyMC model has
    rows = select_grid(X, args.kmax, SKLEARN_TYPES, random_state=args.seed, progress=True)
    _write_rows(out / "select.csv", rows)
    top = best(rows, "bic")
    K, ct = top["K"], top["covariance_type"]
    timings["select_s"] = time.perf_counter() - t0
    print(f"[1/5] best by BIC: K={K} {ct} (BIC {top['bic']:.2f})")
    args.components, args.covariance_type = K, ct
    # the neighbours only feed the LOO table: 2 chains x 500 draws are plenty for PSIS-LOO
    short = argparse.Namespace(**{**vars(args), "chains": min(args.chains, 2),
                                  "draws": min(args.draws, 500), "tune": min(args.tune, 500)})
    neighbours = [K2 for K2 in (K - 1, K + 1) if 1 <= K2 <= args.kmax]
    # with a helper it samples both neighbours (the dearer, K + 1, first), while this process
    # runs the EM pair, samples the chosen model, compares it with EM and draws its figures
    helper, here = (neighbours[::-1], []) if pool is not None else ([], neighbours)
    t1 = time.perf_counter()
    if helper:   # it needs no EM fit of ours: it starts before the EM pair
        loo = pool.apply_async(_sample_neighbours, (X, helper, ct, short, names, out, False))
    mle, mapped, em_mle, em_map = _em_pair(X, args, names)
    em_mle.to_netcdf(out / "em_mle.nc")
    em_map.to_netcdf(out / "em_map.nc")
    print(f"[2/5] EM MLE log-lik {mle.log_likelihood:.3f}; MAP log-posterior "
          f"{mapped.log_posterior:.3f}")
    t_nuts = time.perf_counter()
    dt = _sample(X, K, ct, args, names, init=mapped.params, posterior_predictive=True)
    dt.to_netcdf(out / "posterior.nc")
    shutil.copyfile(out / "posterior.nc", out / f"posterior_K{K}.nc")  # the LOO table's copy
    timings["sample_s"] = time.perf_counter() - t_nuts
    timings.update(_sample_neighbours(X, here, ct, short, names, out))
    rows_c, agreement = compare(em_map, dt, em_mle_dt=em_mle)
    _write_rows(out / "comparison.csv", rows_c)
    ready = None
    if helper:
        # the report's sections on the chosen model while the helper finishes the neighbours
        t2 = time.perf_counter()
        ready = sections(out, skip=("loo", "record"))
        timings["report_early_s"] = time.perf_counter() - t2
        timings.update(loo.get())
        # its work is done: it exits (on its own, see cmd_demo) while this one renders
        pool.close()
    line = f"[3/5] NUTS: {args.chains} chains x {args.draws} draws in {timings['sample_s']:.1f} s"
    if neighbours:
        where = "in a second process" if helper else "after it"
        parts = [f"K = {K2} {timings[f'sample_K{K2}_s']:.1f} s" for K2 in neighbours]
        line += (f"; for the LOO table, {short.chains} x {short.draws} {where}: "
                 f"{', '.join(parts)}")
        if "report_early_s" in timings:
            line += f" (meanwhile the report's K = {K} figures, {timings['report_early_s']:.1f} s)"
        line += f"; {time.perf_counter() - t1:.1f} s in all, with the EM pair"
    print(line)
    _warn_sampling(dt)
    worst = max(r["r_hat"] for r in rows_c)
    print(f"[4/5] max r_hat {worst:.4f}; mean |EM gamma - posterior| "
          f"{agreement['mean_abs_gamma_diff']:.4f}")
    timings["total_before_report_s"] = time.perf_counter() - t0
    write_json(out / "run.json", _record(
        args, names, title=f"Old Faithful: K={K} {ct} by EM and NUTS", model=f"K={K} {ct}",
        timings=timings, label_alignment=f"{dt.attrs.get('relabel_draws_permuted', 0)} draws "
        "permuted onto the EM MAP labels (Hungarian matching)", agreement=agreement))
    render(out, ready=ready)


COMMANDS = {"simulate": cmd_simulate, "fit": cmd_fit, "select": cmd_select, "sample": cmd_sample,
            "compare": cmd_compare, "predict": cmd_predict, "report": cmd_report, "demo": cmd_demo}


def main(argv=None):
    """Run ``gmm`` with ``argv``: the console script's body.

    Parameters
    ----------
    argv : list of str or None

    Returns
    -------
    int
        Exit status: 0 on success, 2 on bad input, 130 after Ctrl-C.
    """
    args = build_parser().parse_args(argv)
    previous = interrupt.install_handler()
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="PyTensor could not link to a BLAS")
            COMMANDS[args.command](args)
    except BaseException as exc:
        if interrupt.interrupted(exc):
            return interrupt.report()
        if not isinstance(exc, UserError | ValueError | TypeError | FileNotFoundError):
            raise
        msg = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        print(f"gmm: error: {msg}", file=sys.stderr)
        return 2
    finally:
        interrupt.restore_handler(previous)
    return 0

