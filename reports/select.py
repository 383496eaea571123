"""Model selection over K and covariance types by BIC or ICL (mclust's ``mclustBIC``)."""

from __future__ import annotations

import numpy as np

import em
from models.families import MCLUST_NAMES
from models.prior import Prior
from models.seeds import seed_sequence


def select_grid(X, k_max, covariance_types=MCLUST_NAMES, use_prior=False, n_init=5,
                random_state=0, progress=False, k_min=1, return_fits=False):
    """Fit EM on a grid of K = k_min..k_max and covariance types.

    Parameters
    ----------
    X : ndarray of shape (N, d)
    k_max : int
    covariance_types : sequence of str
        Default: mclust's 14 models.
    use_prior : bool
        Fit the MAP under ``Prior.default`` (as mclust's ``prior=priorControl()``) instead of
        the MLE.
    n_init : int
    random_state : int or numpy.random.SeedSequence
        Each fit of the grid gets its own stream of it.
    progress : bool
        Show a progress bar over the grid.
    k_min : int
        Smallest K.
    return_fits : bool
        Also return the fits.

    Returns
    -------
    rows : list of dict
        One row per fit: ``K``, ``covariance_type``, ``log_likelihood``, ``n_parameters``, ``bic``,
        ``icl``, ``aic``, ``converged`` and ``error`` (the message of a fit that degenerated;
        its criteria are NaN).
    fits : dict of (K, covariance_type) to em.EMResult
        With ``return_fits``: the fits that did not fail.
    """
    grid = [(K, ct) for ct in covariance_types for K in range(k_min, k_max + 1)]
    iterator = grid
    if progress:
        from tqdm.auto import tqdm

        iterator = tqdm(grid, desc="model grid")
    rows, fits = [], {}
    seqs = dict(zip(grid, seed_sequence(random_state, "random_state").spawn(len(grid))))
    for K, ct in iterator:
        prior = Prior.default(X, K, ct) if use_prior else None
        try:
            res = em.fit(X, K, ct, prior=prior, n_init=n_init, random_state=seqs[K, ct],
                         tol=1e-8)
            fits[K, ct] = res
            rows.append({"K": K, "covariance_type": ct, "log_likelihood": res.log_likelihood,
                         "n_parameters": res.params.n_parameters, "bic": res.bic, "icl": res.icl,
                         "aic": res.aic, "converged": res.converged, "error": ""})
        except ValueError as exc:
            rows.append({"K": K, "covariance_type": ct, "log_likelihood": np.nan,
                         "n_parameters": np.nan, "bic": np.nan, "icl": np.nan, "aic": np.nan,
                         "converged": False, "error": str(exc).splitlines()[0]})
    return (rows, fits) if return_fits else rows


def best(rows, criterion="bic"):
    """The row with the lowest criterion (scikit-learn's sign).

    Parameters
    ----------
    rows : list of dict
    criterion : {"bic", "icl", "aic"}

    Returns
    -------
    dict
    """
    if criterion not in ("bic", "icl", "aic"):
        raise ValueError(f"criterion={criterion!r} is not supported; use 'bic', 'icl' or 'aic'.")
    ok = [r for r in rows if np.isfinite(r[criterion])]
    if not ok:
        raise ValueError("every fit in the grid failed; add a prior (--map) or lower --kmax.")
    return min(ok, key=lambda r: r[criterion])


def ranked(rows, criterion="bic"):
    """Rows sorted by the criterion, failures last."""
    return sorted(rows, key=lambda r: (not np.isfinite(r[criterion]), r[criterion]))


def bic_table(rows, criterion="bic"):
    """The grid as mclust prints it: K as rows, covariance types as columns.

    Parameters
    ----------
    rows : list of dict
        :func:`select_grid` rows.
    criterion : {"bic", "icl", "aic"}

    Returns
    -------
    str
        The table (failed fits as "failed"), with the criterion's sign stated: lower is better
        here, where mclust prints the negative.
    """
    types = list(dict.fromkeys(r["covariance_type"] for r in rows))
    Ks = sorted({r["K"] for r in rows})
    cell = {(r["K"], r["covariance_type"]): r[criterion] for r in rows}
    width = max(9, *(len(t) for t in types))
    lines = [f"{criterion.upper()} (lower is better; mclust prints -{criterion.upper()}):",
             "K".rjust(3) + "".join(t.rjust(width + 1) for t in types)]
    for K in Ks:
        vals = [cell.get((K, t), np.nan) for t in types]
        lines.append(f"{K:>3}" + "".join(
            (f"{v:.2f}" if np.isfinite(v) else "failed").rjust(width + 1) for v in vals))
    top = [r for r in ranked(rows, criterion) if np.isfinite(r[criterion])][:3]
    lines += ["", f"Top 3 models based on the {criterion.upper()} criterion:",
              "".join(f"{r['covariance_type']},{r['K']}".rjust(width + 1) for r in top),
              "".join(f"{r[criterion]:.2f}".rjust(width + 1) for r in top)]
    return "\n".join(lines)
