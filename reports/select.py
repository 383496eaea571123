"""Model selection over K and covariance types by BIC or ICL (mclust's ``mclustBIC``)."""

from __future__ import annotations

import warnings

import numpy as np

import em
from models.families import MCLUST_NAMES, family
from models.prior import Prior
from models.seeds import seed_sequence

#: mclust's EM tolerance (``emControl()$tol[1]``): the grid's fits stop at this relative change
SELECT_TOL = 1e-5
#: the best fits by each criterion that are refined, and the tolerance they are refined to
REFINE, REFINE_TOL = 3, 1e-8


def select_grid(X, k_max, covariance_types=MCLUST_NAMES, use_prior=False, random_state=0,
                progress=False, k_min=1, return_fits=False, init="hc", tol=SELECT_TOL,
                refine=REFINE):
    """Fit EM on a grid of K = k_min..k_max and covariance types, as mclust's ``mclustBIC``.

    Every fit starts, as mclust's do, from one model-based hierarchical agglomeration of the data
    (computed once for the whole grid, :mod:`em.init`) and stops at mclust's tolerance; the
    ``refine`` best fits by BIC and by ICL then continue from their estimates to
    :data:`REFINE_TOL`, so that their criteria are those of the maxima.

    Parameters
    ----------
    X : ndarray of shape (N, d)
    k_max : int
    covariance_types : sequence of str
        Default: mclust's 14 models.
    use_prior : bool
        Fit the MAP under ``Prior.default`` (as mclust's ``prior=priorControl()``) instead of
        the MLE.
    random_state : int or numpy.random.SeedSequence
        Seeds the subsample the agglomeration runs on, one for the whole grid (``init="auto"``:
        also the k-means++ restarts).
    progress : bool
        Show a progress bar over the grid.
    k_min : int
        Smallest K.
    return_fits : bool
        Also return the fits.
    init : str
        The grid's start (:func:`em.fit`'s ``init``; ``"auto"`` adds Ward's and k-means++
        restarts to each fit).
    tol : float
        The grid's tolerance (:func:`em.fit`'s ``tol``).
    refine : int
        How many of the best fits by each criterion are refined.

    Returns
    -------
    rows : list of dict
        One row per fit: ``K``, ``covariance_type``, ``log_likelihood``, ``n_parameters``, ``bic``,
        ``icl``, ``aic``, ``converged`` and ``error`` (the one-line reason of a fit that failed;
        its criteria are NaN).
    fits : dict of (K, covariance_type) to em.EMResult
        With ``return_fits``: the fits that did not fail.
    """
    grid = [(K, ct) for ct in covariance_types for K in range(k_min, k_max + 1)]
    iterator = grid
    if progress:
        from tqdm.auto import tqdm

        iterator = tqdm(grid, desc="model grid")
    rows, fits, priors = {}, {}, {}
    # one stream for every fit, as mclust draws one subset for its agglomeration: on more rows
    # than em.init.HC_MAX_ROWS every fit starts from the same subsample's merges (computed once)
    seq = seed_sequence(random_state, "random_state").spawn(1)[0]
    for K, ct in iterator:
        if use_prior and not family(ct).has_map:    # as mclust: no conjugate prior, no MAP fit
            rows[K, ct] = _row(K, ct, None, NO_PRIOR)
            continue
        priors[K, ct] = Prior.default(X, K, ct) if use_prior else None
        try:
            with warnings.catch_warnings():  # an unconverged fit says so in its row instead
                warnings.filterwarnings("ignore", "Best performing initialization")
                res = em.fit(X, K, ct, prior=priors[K, ct], init=init, n_init=1,
                             random_state=np.random.SeedSequence(seq.entropy,
                                                                spawn_key=seq.spawn_key),
                             tol=tol)
        except ValueError as exc:
            if getattr(exc, "column", None) is not None:
                raise                   # the data's fault (a constant column), not this fit's
            rows[K, ct] = _row(K, ct, None, reason(exc))
            continue
        fits[K, ct], rows[K, ct] = res, _row(K, ct, res)
    for criterion in ("bic", "icl"):
        for r in ranked(list(rows.values()), criterion)[:refine]:
            key = r["K"], r["covariance_type"]
            if key in fits and fits[key].n_iter and tol > REFINE_TOL:
                try:
                    with warnings.catch_warnings():   # short of REFINE_TOL it is no worse
                        warnings.filterwarnings("ignore", "Best performing initialization")
                        res = em.fit(X, *key, prior=priors[key], init=fits[key].params,
                                     tol=REFINE_TOL)
                except ValueError:      # it collapses past mclust's tolerance: keep the fit there
                    continue
                fits[key], rows[key] = res, _row(*key, res)
    rows = [rows[key] for key in grid]
    return (rows, fits) if return_fits else rows


def _row(K, ct, res, error=""):
    if res is None:
        return {"K": K, "covariance_type": ct, "log_likelihood": np.nan, "n_parameters": np.nan,
                "bic": np.nan, "icl": np.nan, "aic": np.nan, "converged": False, "error": error}
    return {"K": K, "covariance_type": ct, "log_likelihood": res.log_likelihood,
            "n_parameters": res.params.n_parameters, "bic": res.bic, "icl": res.icl,
            "aic": res.aic, "converged": res.converged, "error": ""}


#: the reason of a MAP fit of a family without a conjugate prior (mclust has none either)
NO_PRIOR = "no conjugate prior for a MAP fit (mclust has none either); fit by maximum likelihood."


def reason(exc):
    """A failed fit's reason in one short line: the message's first sentence."""
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return text.split(". ")[0].rstrip(".") + "."


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
        raise ValueError("every fit in the grid failed; each row's 'error' says why.")
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
        here, where mclust prints the negative. Every value has two decimals and every column
        is as wide as its widest value.
    """
    types = list(dict.fromkeys(r["covariance_type"] for r in rows))
    Ks = sorted({r["K"] for r in rows})
    cell = {(r["K"], r["covariance_type"]): _number(r[criterion]) for r in rows}
    top = [r for r in ranked(rows, criterion) if np.isfinite(r[criterion])][:3]
    names = [f"{r['covariance_type']},{r['K']}" for r in top]
    values = [_number(r[criterion]) for r in top]
    width = 1 + max(len(v) for v in [*types, *cell.values(), *names, *values])
    lines = [f"{criterion.upper()} (lower is better; mclust prints -{criterion.upper()}):",
             "K".rjust(3) + "".join(t.rjust(width) for t in types)]
    for K in Ks:
        lines.append(f"{K:>3}" + "".join(cell.get((K, t), "").rjust(width) for t in types))
    lines += ["", f"Top 3 models based on the {criterion.upper()} criterion:",
              "".join(n.rjust(width) for n in names), "".join(v.rjust(width) for v in values)]
    return "\n".join(lines)


def _number(v):
    return f"{v:.2f}" if np.isfinite(v) else "failed"
