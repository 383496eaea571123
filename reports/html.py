"""Render a results folder as one self-contained HTML page (figures embedded, PNGs beside it)."""

from __future__ import annotations

import base64
import csv
import html
import json
from pathlib import Path

import arviz as az
import arviz_plots as azp
import numpy as np
import xarray as xr

from models.pymc import point_to_params
from reports import figures
from reports.compare import compare, format_value

#: (id, title, how to read it) of every section, in order
SECTIONS = [
    ("data", "Data and fitted components",
     "Each ellipse holds 39% (1-sigma, solid) or 86% (2-sigma, dashed) of a component's mass; "
     "faint blue ellipses are 50 posterior draws, so their spread is the posterior uncertainty."),
    ("selection", "Model selection: BIC and ICL over K and covariance types",
     "Lower is better (scikit-learn's sign; mclust plots the negative). ICL adds a penalty for "
     "overlapping components, so it prefers well-separated clusters."),
    ("rank", "Rank plots",
     "Ranks of each chain's draws among all draws: flat histograms inside the envelope mean the "
     "chains explore the same distribution."),
    ("trace", "Trace plots",
     "Draws against iteration for every chain: overlapping, stationary 'hairy caterpillars' are "
     "what convergence looks like."),
    ("diagnostics", "Convergence: r_hat, ESS and divergences",
     "r_hat should be at most 1.01 and bulk ESS at least 400 per scalar; any divergence flags a "
     "region NUTS could not integrate accurately."),
    ("energy", "Energy plot",
     "Marginal energy against energy transitions: similar widths (BFMI above 0.3) mean the "
     "sampler moves efficiently between energy levels."),
    ("forest", "Posterior intervals with EM estimates",
     "Every scalar on a common scale (posterior sd units): the blue bar is the posterior 94% "
     "interval; the EM MAP (diamond) should sit near the posterior mode, the MLE (cross) nearby."),
    ("comparison", "EM against the posterior, scalar by scalar",
     "EM estimate, posterior mean, sd, 94% interval, r_hat and ESS; 'inside' says whether EM "
     "lies inside the posterior interval."),
    ("ppc", "Posterior predictive check",
     "Observed marginal densities (black) against data sets simulated from posterior draws "
     "(blue): the black line should look like one of the blue ones."),
    ("responsibilities", "EM responsibilities against posterior p(z | x)",
     "One point per observation and component: points on the diagonal mean EM's gamma(z_nk) "
     "equals the posterior probability of the assignment."),
    ("loo", "LOO across K",
     "Expected log predictive density (PSIS-LOO) of each sampled K, with its standard error: "
     "higher is better; differences within about 2 SE are not decisive."),
    ("record", "Run record",
     "How this report was made: the command, seed, versions, timings and the label alignment "
     "applied to the draws."),
]


def _img(path):
    data = base64.b64encode(Path(path).read_bytes()).decode()
    return f'<img src="data:image/png;base64,{data}" alt="{html.escape(Path(path).stem)}">'


def _table(rows, columns=None, fmt="{:.4g}"):
    if not rows:
        return "<p>(empty)</p>"
    columns = columns or list(rows[0])

    def cell(v):
        return html.escape(format_value(v, fmt))

    head = "".join(f"<th>{html.escape(c)}</th>" for c in columns)
    body = "".join("<tr>" + "".join(f"<td>{cell(r.get(c, ''))}</td>" for c in columns) + "</tr>"
                   for r in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def read_csv_rows(path):
    """CSV rows as dicts with numbers parsed."""
    with open(path, newline="") as fh:
        rows = list(csv.DictReader(fh))
    for r in rows:
        for k, v in r.items():
            try:
                r[k] = int(v) if v.isdigit() else float(v)
            except (ValueError, AttributeError):
                pass
    return rows


def render(folder):
    """Render ``folder/index.html`` from the results in it, and write each figure as PNG.

    Reads what exists of ``em_mle.nc``, ``em_map.nc``, ``posterior.nc``, ``posterior_K*.nc``,
    ``select.csv``, ``run.json`` and ``data.npy``; a section whose inputs are missing says so.

    Parameters
    ----------
    folder : str or Path

    Returns
    -------
    Path
        The HTML file.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"results folder {str(folder)!r} does not exist.")
    load = {p.stem: xr.open_datatree(p) for p in sorted(folder.glob("*.nc"))}
    record = json.loads((folder / "run.json").read_text()) if (folder / "run.json").exists() else {}
    post = load.get("posterior")
    em_map, em_mle = load.get("em_map"), load.get("em_mle")
    ref = post or em_map or em_mle
    if ref is None:
        raise FileNotFoundError(f"no results (*.nc) in {str(folder)!r}; run gmm fit or gmm sample.")
    X = ref["observed_data"]["x"].values
    names = record.get("columns") or [f"x{j}" for j in range(X.shape[1])]
    body = {}

    estimates = {}
    for label, tree in (("EM MLE", em_mle), ("EM MAP", em_map)):
        if tree is not None:
            p = tree["posterior"]
            estimates[label] = point_to_params({v: p[v].values[0, 0] for v in ("pi", "mu", "Sigma")},
                                               tree.attrs["covariance_type"])
    if X.shape[1] >= 2:
        body["data"] = _img(figures.ellipses(folder / "data.png", X, names, estimates, post))
    else:
        body["data"] = "<p>One-dimensional data: ellipses need two features.</p>"

    if (folder / "select.csv").exists():
        rows = read_csv_rows(folder / "select.csv")
        ok = [r for r in rows if isinstance(r["bic"], float) and np.isfinite(r["bic"])]
        body["selection"] = _img(figures.selection(folder / "selection.png", ok)) + _table(
            sorted(ok, key=lambda r: r["bic"])[:8],
            ["K", "covariance_type", "log_likelihood", "n_parameters", "bic", "icl"])

    if post is not None:
        var_names = ["pi", "mu", "Sigma"]
        body["rank"] = _img(figures.arviz_plot(folder / "rank.png", azp.plot_rank, post,
                                               var_names=["pi", "mu"]))
        body["trace"] = _img(figures.arviz_plot(folder / "trace.png", azp.plot_trace, post,
                                                var_names=["pi", "mu"]))
        summ = az.summary(post, var_names=var_names, kind="diagnostics", round_to="none")
        n_div = int(post["sample_stats"]["diverging"].sum())
        diag_rows = [{"parameter": i, **{c: float(summ.loc[i, c]) for c in summ.columns}}
                     for i in summ.index]
        body["diagnostics"] = (f"<p>max r_hat = {summ['r_hat'].max():.4f}; min bulk ESS = "
                               f"{summ['ess_bulk'].min():.0f}; divergences = {n_div}.</p>"
                               + _table(diag_rows))
        body["energy"] = _img(figures.arviz_plot(folder / "energy.png", azp.plot_energy, post))
        if em_map is not None:
            rows, agreement = compare(em_map, post, em_mle_dt=em_mle)
            body["forest"] = _img(figures.forest(folder / "forest.png", rows))
            body["comparison"] = _table(rows, ["parameter", "em_mle", "em", "mean", "sd", "lower",
                                               "upper", "inside", "r_hat", "ess_bulk"]
                                        if em_mle is not None else None)
            body["responsibilities"] = (
                _img(figures.responsibilities(folder / "responsibilities.png",
                                              em_map["responsibilities"]["gamma"].values,
                                              post["responsibilities"]["gamma"].values))
                + f"<p>mean |EM gamma - posterior p(z|x)| = {agreement['mean_abs_gamma_diff']:.4f}"
                f"; max = {agreement['max_abs_gamma_diff']:.4f}; same most-likely component for "
                f"{100 * agreement['label_agreement']:.1f}% of observations.</p>")
        if "posterior_predictive" in post.children:
            body["ppc"] = _img(figures.ppc_marginals(folder / "ppc.png", X, names, post))
    by_K = {int(k.split("_K")[1]): t for k, t in load.items() if k.startswith("posterior_K")}
    if len(by_K) >= 2:
        table = []
        for K, t in sorted(by_K.items()):
            res = az.loo(t)
            table.append({"K": K, "elpd_loo": float(res.elpd), "se": float(res.se),
                          "p_loo": float(res.p), "max_pareto_k": float(np.max(res.pareto_k))})
        body["loo"] = _img(figures.loo_plot(folder / "loo.png", table)) + _table(table)
    body["record"] = _table([{"item": k, "value": json.dumps(v) if not isinstance(v, str) else v}
                             for k, v in record.items()]) if record else "<p>No run.json.</p>"

    parts = []
    for sid, title, how in SECTIONS:
        content = body.get(sid, "<p><em>Not available in these results.</em></p>")
        parts.append(f'<section id="{sid}"><h2>{html.escape(title)}</h2>'
                     f'<p class="how">How to read it: {html.escape(how)}</p>{content}</section>')
    page = _PAGE.format(title=html.escape(record.get("title", "gmm-suite report")),
                        body="\n".join(parts))
    out = folder / "index.html"
    out.write_text(page)
    return out


_PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<style>
body {{ font-family: system-ui, sans-serif; max-width: 1000px; margin: 2em auto; color: #222; }}
h1 {{ font-size: 1.6em; }} h2 {{ font-size: 1.2em; border-bottom: 1px solid #ddd; }}
.how {{ color: #555; font-style: italic; }}
img {{ max-width: 100%; }}
table {{ border-collapse: collapse; font-size: 0.8em; margin: 0.5em 0; }}
td, th {{ border: 1px solid #ddd; padding: 2px 6px; text-align: right; }}
</style></head><body>
<h1>{title}</h1>
{body}
</body></html>
"""
