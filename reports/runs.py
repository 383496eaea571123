"""What the commands share when they run: reading the data, fitting, sampling, recording.

The commands (:mod:`reports.commands`) import this when they run, never when the parser is built.
Every random step takes its own stream of the run's one ``--seed`` (:mod:`models.seeds`).
"""

from __future__ import annotations

import shlex
import sys
from pathlib import Path

import numpy as np

import em
from models.prior import Prior
from models.pymc.gibbs import KEEP
from models.results import versions, with_groups
from reports import joint
from reports.io import dataset_name, load_data
from reports.options import UserError, read_options, split_names
from reports.tables import as_frame

OUT_ROOT = Path("reports/out")
MAX_PREDICTIVE_VALUES = 25_000_000     # posterior_predictive above this (200 MB) is left out


def target(args, name):
    """The results folder: ``--out``, else ``reports/out/<name>``."""
    return Path(args.out) if args.out else OUT_ROOT / name


def model_name(args, data_name):
    """``<command>-<data>-K<k>-<type>``: a run's default folder name."""
    return f"{args.command}-{data_name}-K{args.components}-{args.covariance_type}"


def data(args):
    """The data matrix, its column names and the data set's short name.

    The names, and the columns that look like labels, stay on ``args`` for :func:`fix_advice`.
    """
    X, names = load_data(args.data, split_names(args.columns), split_names(args.exclude),
                         **read_options(args))
    args.data_names, args.label_columns = names, label_columns(X, names)
    return X, names, dataset_name(args.data)


def label_columns(X, names, max_values=20):
    """Columns that look like labels among measurements (``gmm simulate``'s z).

    A label column holds consecutive integers from 0 or 1, at most ``max_values`` of them, in a
    table where some column is not integer-valued: in a table of counts or scores (every
    column integers, as scikit-learn's digits) no column stands out, and none is named.

    Parameters
    ----------
    X : ndarray of shape (N, d)
    names : list of str
    max_values : int

    Returns
    -------
    list of (str, int, int)
        Each such column's name, smallest and largest value.
    """
    found, integer = [], []
    for j, name in enumerate(names):
        col = X[:, j]
        col = col[np.isfinite(col)]
        is_int = bool(col.size) and np.array_equal(col, np.round(col))
        integer.append(is_int)
        if not is_int:
            continue
        values = np.unique(col)
        lo, hi = int(values[0]), int(values[-1])
        if 1 < values.size <= max_values and lo in (0, 1) and values.size == hi - lo + 1:
            found.append((name, lo, hi))
    return [] if all(integer) else found


def fix_advice(exc, args):
    """An EM error in the command line's terms: the diagnosis, then the fixes as its options.

    Parameters
    ----------
    exc : em.mstep.FixableError
        Its ``fixes`` are the API's (``prior``, ``reg_covar``, ``n_components``,
        ``drop_column``); the command says each as the option it has, or leaves it out.
    args : argparse.Namespace
        The command's options (after :func:`data`: the columns' names and label-like columns).

    Returns
    -------
    str
        One line.
    """
    names = getattr(args, "data_names", None)
    diagnosis = exc.diagnosis.rstrip(".")
    if exc.column is not None and names:
        diagnosis = diagnosis.replace(f"Column {exc.column} of X", f"column {names[exc.column]!r}")
    advice = [f"leave label column {n!r} (integers {lo} to {hi}) out with --exclude {n}"
              for n, lo, hi in getattr(args, "label_columns", []) if n in (names or [])]
    for fix in exc.fixes:
        if fix == "drop_column" and exc.column is not None and names:
            named = [names[j] for j in exc.columns]
            if len(named) > 1:
                listed = ", ".join(repr(c) for c in named[:-1]) + f" and {named[-1]!r}"
                advice.append(f"leave the constant columns {listed} out with "
                              f"--exclude {','.join(named)}")
            else:
                advice.append(f"leave column {named[0]!r} out with --exclude {named[0]}")
        elif fix == "prior" and hasattr(args, "map") and not args.map:
            advice.append("add --map (MAP under mclust's conjugate prior)")
        elif fix == "n_components" and hasattr(args, "kmax"):
            advice.append("lower --kmax")
        elif fix == "n_components" and hasattr(args, "components"):
            advice.append("lower -k")
        elif fix == "scale":
            advice.append("scale the columns before the fit (as mclust's examples do)")
    if not advice:
        return f"{diagnosis}."
    said = advice[0] if len(advice) == 1 else "; ".join(advice[:-1]) + "; or " + advice[-1]
    return f"{diagnosis}: {said}."


def record(args, names, **extra):
    """The run record (``run.json``): the command as typed, the seed, the columns, versions."""
    return {"command": "gmm " + " ".join(shlex.quote(a) for a in sys.argv[1:]),
            "seed": getattr(args, "seed", None), "columns": names, "versions": versions(),
            **extra}


def fit(X, args, use_map, seq, progress=True):
    """EM for ``args``' K and type: the MLE, or the MAP under ``Prior.default``."""
    from models.families import FAMILIES, family  # the families with a MAP, by the table

    if use_map and not family(args.covariance_type).has_map:
        names = ", ".join(f.name for f in FAMILIES if f.has_map)
        raise UserError(f"--map needs a covariance type with a conjugate prior ({names}, as in "
                        f"mclust); --covariance-type {args.covariance_type} has none: leave out "
                        "--map for maximum likelihood.")
    prior = Prior.default(X, args.components, args.covariance_type) if use_map else None
    return em.fit(X, args.components, args.covariance_type, prior=prior,
                  n_init=getattr(args, "n_init", 5), max_iter=getattr(args, "max_iter", 1000),
                  random_state=seq, progress=progress)


def vb(X, args, seq, progress=True):
    """Variational Bayes for ``args``' K and type under ``Prior.default`` (``--vb``)."""
    from models.families import FAMILIES, family  # the conjugate families, by the table

    if not family(args.covariance_type).conjugate:
        names = ", ".join(f.name for f in FAMILIES if f.conjugate)
        raise UserError(f"--vb needs a conjugate family ({names}, or full, tied, diag, "
                        f"spherical); --covariance-type {args.covariance_type} has none.")
    prior = Prior.default(X, args.components, args.covariance_type)
    return em.fit(X, args.components, args.covariance_type, prior=prior, method="vb",
                  n_init=getattr(args, "n_init", 5), max_iter=getattr(args, "max_iter", 1000),
                  random_state=seq, progress=progress)


def em_pair(X, args, names, seq):
    """EM MLE and MAP, the MLE on the MAP's (so the posterior's) labels, and their trees."""
    seq_mle, seq_map = seq.spawn(2)
    mle = fit(X, args, False, seq_mle, progress=False)
    mapped = fit(X, args, True, seq_map, progress=False)
    mle = joint.align(mle, mapped.params)
    return mle, mapped, joint.em_to_datatree(mle, X, names), joint.em_to_datatree(mapped, X, names)


def sample(X, K, covariance_type, args, names, seq, progressbar=True, **kw):
    """The posterior under ``Prior.default``, by ``args``' route, draws and chains."""
    prior = Prior.default(X, K, covariance_type)
    return joint.sample(X, K, covariance_type, prior=prior, draws=args.draws, tune=args.tune,
                        chains=args.chains, random_seed=seq, sampler=args.sampler,
                        cores=args.cores, progressbar=progressbar, feature_names=names,
                        max_seconds=getattr(args, "max_seconds", 60.0), **kw)


def report_sampling(dt):
    """Print how the run ended (one line) and what the results leave out, if anything."""
    if dt.attrs.get("convergence"):
        print(dt.attrs["convergence"])
    if dt.attrs.get("left_out"):
        print(f"note: left out {dt.attrs['left_out']}")


def child(seq, i):
    """The ``i``-th child stream of ``seq``, whatever ``seq`` has spawned so far.

    The same stream ``seq.spawn`` gives as its ``i``-th child, without advancing its count: a
    step that runs first can take a later child, so the other steps keep theirs.
    """
    return np.random.SeedSequence(seq.entropy, spawn_key=(*seq.spawn_key, i),
                                  pool_size=seq.pool_size)


def find_modes(X, K, covariance_type, args, seq):
    """EM's local modes under the posterior's prior (``Prior.default``).

    Parameters
    ----------
    X : ndarray of shape (N, d)
    K : int
    covariance_type : str
    args : argparse.Namespace
        With ``mode_restarts`` (default :data:`reports.modes.MIN_RESTARTS`).
    seq : numpy.random.SeedSequence
        EM's restarts' stream.

    Returns
    -------
    reports.modes.ModeMap
    """
    from reports import modes  # scipy.optimize: loaded where the modes are found, not by fit/select

    prior = Prior.default(X, K, covariance_type)
    return modes.em_modes(X, K, covariance_type, prior,
                          n_init=getattr(args, "mode_restarts", modes.MIN_RESTARTS),
                          random_state=seq)


def place_draws(mode_map, dt, X, estimates):
    """Each draw's and each EM estimate's nearest mode; the posterior with its ``modes`` group.

    Parameters
    ----------
    mode_map : reports.modes.ModeMap
    dt : xarray.DataTree
        The posterior.
    X : ndarray of shape (N, d)
    estimates : dict of str to (pi, mu)
        EM estimates to place (:func:`reports.modes.assign`).

    Returns
    -------
    xarray.DataTree
    """
    from reports import modes

    modes.assign(mode_map, dt, X, estimates)
    return with_groups(dt, modes=modes.modes_group(mode_map, dt))


def write_modes(folder, mode_map):
    """Write ``modes.csv`` (the table, a row per configuration) and ``local_modes.csv``.

    ``local_modes.csv`` lists every local mode EM reached, with its log posterior.
    """
    write_rows(folder / "modes.csv", mode_map.rows())
    write_rows(folder / "local_modes.csv", mode_map.local_rows())


def print_modes(mode_map, names=("EM MAP",)):
    """The modes table, and one line per EM estimate on where it sits."""
    from reports import modes
    from reports.tables import format_table

    failed = len(mode_map.failures)
    print(f"modes of the posterior: EM's MAP from {mode_map.n_restarts} restarts"
          + (f" ({failed} failed: {mode_map.failures[0]})" if failed else "")
          + f" reaches {len(mode_map.modes)} local mode(s), in {len(mode_map.leaders)} "
          "configuration(s); share = the share of the draws nearest each")
    print(format_table(modes.display_rows(mode_map.rows())))
    for name in names:
        print(mode_map.summary(name))


def wants_predictive(X, args):
    """Whether the posterior predictive (chains x draws data sets) fits in the budget."""
    draws = args.draws or KEEP
    size = args.chains * draws * X.size
    if size > MAX_PREDICTIVE_VALUES:
        print(f"note: no posterior_predictive group: {args.chains} x {draws} replicates of "
              f"{X.shape[0]} x {X.shape[1]} data would hold {size:.2g} values (limit "
              f"{MAX_PREDICTIVE_VALUES:.2g}); lower --draws to get it.")
        return False
    return True


def warn_sampling(dt):
    """Print one warning line when the draws show convergence problems."""
    from reports.compare import sampling_problems  # ArviZ: only once there are draws

    problems = sampling_problems(dt)
    if problems:
        print(f"warning: {problems}: the draws may not represent the posterior; sample longer "
              "(--tune, --draws) or check the model.")


def params_table(params, names):
    """One row per component: its weight, mean and sd per feature."""
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


def write_rows(path, rows):
    """Dict rows as a CSV file (NaN written as ``nan``)."""
    as_frame(rows).to_csv(path, index=False, na_rep="nan")
