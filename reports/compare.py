"""EM estimates against the posterior, scalar by scalar."""

from __future__ import annotations

import arviz as az
import numpy as np

SCALARS = ["pi", "mu", "Sigma"]


def compare(em_dt, post_dt, ci_prob=0.94, em_mle_dt=None):
    """A table of EM estimate, posterior mean, sd, central interval, r_hat and ESS per scalar.

    Parameters
    ----------
    em_dt : xarray.DataTree
        :func:`models.pymc.em_to_datatree` output (usually the MAP, the posterior's mode).
    post_dt : xarray.DataTree
        :func:`models.pymc.sample` output.
    ci_prob : float
    em_mle_dt : xarray.DataTree or None
        Also list the MLE.

    Returns
    -------
    rows : list of dict
        Keys ``parameter``, ``em`` (and ``em_mle``), ``mean``, ``sd``, ``lower``, ``upper``,
        ``inside`` (EM inside the interval), ``r_hat``, ``ess_bulk``, ``ess_tail``.
    agreement : dict
        ``mean_abs_gamma_diff`` and ``max_abs_gamma_diff`` between EM's responsibilities and the
        posterior mean of p(z_n = k | x_n), and ``label_agreement`` of the argmax labels.
    """
    summ = az.summary(post_dt, var_names=SCALARS, ci_prob=ci_prob, round_to="none")
    em_summ = az.summary(em_dt, var_names=SCALARS, kind="stats", round_to="none")
    mle_summ = None if em_mle_dt is None else az.summary(em_mle_dt, var_names=SCALARS,
                                                         kind="stats", round_to="none")
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
        row["inside"] = bool(row["lower"] <= row["em"] <= row["upper"])
        rows.append(row)
    g_em = em_dt["responsibilities"]["gamma"].values
    g_post = post_dt["responsibilities"]["gamma"].values
    diff = np.abs(g_em - g_post)
    agreement = {"mean_abs_gamma_diff": float(diff.mean()), "max_abs_gamma_diff": float(diff.max()),
                 "label_agreement": float((g_em.argmax(1) == g_post.argmax(1)).mean())}
    return rows, agreement


def format_table(rows, columns=None, floatfmt="{:.4g}"):
    """Plain-text table of dict rows (for the terminal).

    Parameters
    ----------
    rows : list of dict
    columns : list of str or None
    floatfmt : str

    Returns
    -------
    str
    """
    if not rows:
        return ""
    columns = columns or list(rows[0])
    cells = [[format_value(r.get(c, ""), floatfmt) for c in columns] for r in rows]
    widths = [max(len(c), *(len(row[i]) for row in cells)) for i, c in enumerate(columns)]
    lines = ["  ".join(c.rjust(w) for c, w in zip(columns, widths)),
             "  ".join("-" * w for w in widths)]
    lines += ["  ".join(v.rjust(w) for v, w in zip(row, widths)) for row in cells]
    return "\n".join(lines)


def format_value(value, floatfmt="{:.4g}"):
    """Format a table cell: floats with ``floatfmt``, anything else with ``str``."""
    if isinstance(value, float | np.floating):
        return floatfmt.format(value)
    return str(value)
