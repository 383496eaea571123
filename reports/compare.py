"""EM estimates against the posterior, scalar by scalar."""

from __future__ import annotations

import arviz as az
import numpy as np
import xarray as xr

SCALARS = ["pi", "mu", "Sigma"]


def ci_label():
    """The credible interval every table and figure uses: ArviZ's default (e.g. "89% ETI")."""
    return f"{az.rcParams['stats.ci_prob']:.0%} {az.rcParams['stats.ci_kind'].upper()}"


def lower_triangle(tree):
    """The posterior with each covariance entry once: ``Sigma``'s lower triangle, labelled by row, col.

    Parameters
    ----------
    tree : xarray.DataTree or xarray.Dataset
        A tree with a ``posterior`` group, or the posterior itself.

    Returns
    -------
    xarray.Dataset
        ``Sigma`` of a full or tied model along one ``entry`` dimension (``"row, col"`` labels,
        row >= col); other variables unchanged.
    """
    post = tree["posterior"].to_dataset() if isinstance(tree, xr.DataTree) else tree
    if "feature_bis" not in post["Sigma"].dims:
        return post
    rows, cols = post["feature"].values, post["feature_bis"].values
    i, j = np.tril_indices(len(rows))
    stacked = post["Sigma"].stack(entry=("feature", "feature_bis"))
    tril = stacked.isel(entry=i * len(rows) + j)
    tril = tril.drop_vars(["entry", "feature", "feature_bis"]).assign_coords(
        entry=[f"{rows[a]}, {cols[b]}" for a, b in zip(i, j)])
    return post.drop_vars("Sigma").drop_dims("feature_bis").assign(Sigma=tril)


def summary(tree, **kwargs):
    """``arviz.summary`` of ``pi``, ``mu`` and ``Sigma`` with each covariance entry once.

    Parameters
    ----------
    tree : xarray.DataTree or xarray.Dataset
    **kwargs
        Passed to ``arviz.summary`` (``kind``, ``round_to``...).

    Returns
    -------
    pandas.DataFrame
    """
    return az.summary(lower_triangle(tree), var_names=SCALARS, **kwargs)


def sampling_problems(dt):
    """A one-line description of convergence problems (r_hat > 1.01, divergences), or "".

    Parameters
    ----------
    dt : xarray.DataTree
        A posterior from :func:`models.pymc.sample`.

    Returns
    -------
    str
    """
    summ = summary(dt, kind="diagnostics", round_to="none")
    r_hat = summ["r_hat"].dropna()             # one chain has no r_hat
    stats = dt["sample_stats"]
    n_div = int(stats["diverging"].sum()) if "diverging" in stats else 0   # Gibbs has none
    problems = []
    if len(r_hat) and not r_hat.max() <= 1.01:
        problems.append(f"max r_hat {r_hat.max():.3f} > 1.01 ({r_hat.idxmax()})")
    if n_div:
        problems.append(f"{n_div} divergent transition(s)")
    return "; ".join(problems)


def _mode_means(post_dt):
    """Posterior means over the draws of EM's MAP's mode (the ``modes`` group), or None."""
    if "modes" not in post_dt.children or "em_map_mode" not in post_dt["modes"].attrs:
        return None
    near = (post_dt["modes"]["mode"] == post_dt["modes"].attrs["em_map_mode"]).values.ravel()
    if not near.any():
        return None
    post = lower_triangle(post_dt).stack(sample=("chain", "draw")).isel(sample=near)
    post = post.drop_vars(["sample", "chain", "draw"]).rename({"sample": "draw"}).expand_dims(
        "chain")
    return az.summary(post, var_names=SCALARS, kind="stats", round_to="none")["mean"]


def compare(em_dt, post_dt, em_mle_dt=None):
    """A table of EM estimate, posterior mean, sd, central interval, r_hat and ESS per scalar.

    Parameters
    ----------
    em_dt : xarray.DataTree
        :func:`reports.joint.em_to_datatree` output (usually the MAP, a mode of the posterior).
    post_dt : xarray.DataTree
        :func:`models.pymc.sample` output.
    em_mle_dt : xarray.DataTree or None
        Also list the MLE.

    Returns
    -------
    rows : list of dict
        Keys ``parameter``, ``em`` (and ``em_mle``), ``mode_mean`` (the posterior mean over
        the draws of the mode EM's MAP belongs to, where ``post_dt`` has a ``modes`` group),
        ``mean``, ``sd``, ``lower``, ``upper`` (ArviZ's default credible interval,
        :func:`ci_label`), ``inside`` (EM inside the interval), ``r_hat``, ``ess_bulk``,
        ``ess_tail``; covariances once (lower triangle).
    agreement : dict
        ``mean_abs_gamma_diff`` and ``max_abs_gamma_diff`` between EM's responsibilities and the
        posterior mean of p(z_n = k | x_n), and ``label_agreement`` of the argmax labels.
    """
    summ = summary(post_dt, round_to="none")
    em_summ = summary(em_dt, kind="stats", round_to="none")
    mle_summ = None if em_mle_dt is None else summary(em_mle_dt, kind="stats", round_to="none")
    mode_means = _mode_means(post_dt)
    lo_col = [c for c in summ.columns if c.endswith("_lb")][0]
    hi_col = [c for c in summ.columns if c.endswith("_ub")][0]
    rows = []
    for name in summ.index:
        r = summ.loc[name]
        row = {"parameter": name, "em": float(em_summ.loc[name, "mean"]),
               "mean": float(r["mean"]), "sd": float(r["sd"]), "lower": float(r[lo_col]),
               "upper": float(r[hi_col]), "r_hat": float(r["r_hat"]),
               "ess_bulk": float(r["ess_bulk"]), "ess_tail": float(r["ess_tail"])}
        if mle_summ is not None:
            row["em_mle"] = float(mle_summ.loc[name, "mean"])
        if mode_means is not None:
            row["mode_mean"] = float(mode_means[name])
        row["inside"] = bool(row["lower"] <= row["em"] <= row["upper"])
        rows.append(row)
    g_em = em_dt["responsibilities"]["gamma"].values
    g_post = post_dt["responsibilities"]["gamma"].values
    diff = np.abs(g_em - g_post)
    agreement = {"mean_abs_gamma_diff": float(diff.mean()), "max_abs_gamma_diff": float(diff.max()),
                 "label_agreement": float((g_em.argmax(1) == g_post.argmax(1)).mean())}
    return rows, agreement


def scalars(ds):
    """Every scalar of a posterior Dataset as ``{label: draws}``, labelled as ``arviz.summary`` does.

    Parameters
    ----------
    ds : xarray.Dataset
        With ``chain`` and ``draw`` dimensions (:func:`lower_triangle` output).

    Returns
    -------
    dict
        ``"mu[0, waiting]"`` to the scalar's draws, flattened over chains and draws.
    """
    out = {}
    for name in SCALARS:
        da = ds[name]
        rest = [d for d in da.dims if d not in ("chain", "draw")]
        values = da.transpose(*rest, "chain", "draw").values
        for index in np.ndindex(*values.shape[:len(rest)]):
            label = ", ".join(str(da[d].values[i]) for d, i in zip(rest, index))
            out[f"{name}[{label}]" if rest else name] = values[index].ravel()
    return out


def compare_vb(rows, vb_dt, post_dt):
    """Add variational Bayes to the comparison rows: its mean, sd, interval, and what it covers.

    The interval is ArviZ's default probability (:func:`ci_label`), equal-tailed, of ``q``'s
    draws; ``vb_coverage`` is the share of the posterior's draws inside it (the interval's
    probability when ``q`` is right), ``vb_sd_ratio`` its sd over the posterior's, and
    ``vb_z`` how far its mean lies from the posterior's, in posterior sds.

    Parameters
    ----------
    rows : list of dict
        :func:`compare` rows (``parameter``, ``mean``, ``sd``, ...).
    vb_dt : xarray.DataTree
        :func:`reports.joint.vb_to_datatree` output, on the posterior's labels.
    post_dt : xarray.DataTree

    Returns
    -------
    list of dict
        The rows with ``vb``, ``vb_sd``, ``vb_lower``, ``vb_upper``, ``vb_coverage``,
        ``vb_sd_ratio`` and ``vb_z``.
    """
    prob = float(az.rcParams["stats.ci_prob"])
    q_draws = scalars(lower_triangle(vb_dt))
    p_draws = scalars(lower_triangle(post_dt))
    out = []
    for row in rows:
        q, p = q_draws[row["parameter"]], p_draws[row["parameter"]]
        lo, hi = np.quantile(q, [(1 - prob) / 2, (1 + prob) / 2])
        sd = float(np.std(q, ddof=1))
        out.append(row | {
            "vb": float(q.mean()), "vb_sd": sd, "vb_lower": float(lo), "vb_upper": float(hi),
            "vb_coverage": float(np.mean((p >= lo) & (p <= hi))),
            "vb_sd_ratio": sd / row["sd"] if row["sd"] > 0 else float("nan"),
            "vb_z": (float(q.mean()) - row["mean"]) / row["sd"] if row["sd"] > 0
            else float("nan")})
    return out
