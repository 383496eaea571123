"""Render a results folder as one self-contained HTML page (figures embedded, PNGs beside it)."""

from __future__ import annotations

import base64
import html
import json
import warnings
from pathlib import Path

import arviz as az
import arviz_plots as azp
import numpy as np
import pandas as pd
import xarray as xr

from models.results import loo_pit_view, point_to_params
from reports import figures
from reports.compare import ci_label, compare, sampling_problems, summary
from reports.tables import as_frame

#: (id, title, how to read it) of every section, in order; {ci} is ArviZ's default interval
SECTIONS = [
    ("data", "Data and fitted components",
     "Each ellipse holds 39% (1-sigma, solid) or 86% (2-sigma, dashed) of a component's mass in "
     "the first two features; faint blue ellipses are 50 posterior draws, so their spread is the "
     "posterior uncertainty."),
    ("classification", "Classification (mclust's plot)",
     "Each observation coloured by its most likely component, with 2-sigma ellipses, for every "
     "pair of features: well separated colours mean well separated clusters."),
    ("uncertainty", "Classification uncertainty (mclust's plot)",
     "Uncertainty 1 - max_k gamma(z_nk): 0 for an observation certainly in one component, up to "
     "1 - 1/K where components overlap. Large dark points are the uncertain ones."),
    ("density", "Mixture density (mclust's plot)",
     "Contours of the fitted mixture density over each pair of features, and each feature's "
     "marginal density over its histogram."),
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
     "region NUTS could not integrate accurately. Each covariance entry is listed once."),
    ("energy", "Energy plot",
     "Marginal energy against energy transitions: similar widths (BFMI above 0.3) mean the "
     "sampler moves efficiently between energy levels."),
    ("forest", "Posterior intervals with EM estimates",
     "Every scalar on a common scale (posterior sd units): the blue bar is the posterior {ci}; "
     "the EM MAP (diamond) should sit near the posterior mode, the MLE (cross) nearby."),
    ("comparison", "EM against the posterior, scalar by scalar",
     "EM estimate, posterior mean, sd, {ci} (lower, upper), r_hat and ESS; 'inside' says "
     "whether EM lies inside the posterior interval."),
    ("ppc", "Posterior predictive check",
     "Observed marginal densities (black) against data sets simulated from posterior draws "
     "(blue): the black line should look like one of the blue ones."),
    ("loo_pit", "LOO-PIT",
     "Leave-one-out probability integral transform of each observed value (each feature of a "
     "left-out observation, weighted by PSIS): the ECDF of the values should stay inside the "
     "band of a uniform distribution. An S shape means the predictive spread is too wide, its "
     "mirror image too narrow."),
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

#: estimate label of each EM-like file's ``method`` attribute
_LABELS = {"em-mle": "EM MLE", "em-map": "EM MAP", "truth": "true mixture"}
_FOREST_ROWS = 80        # past this many scalars the forest plot shows pi and mu only
_PLOT_SCALARS = 20       # rank and trace plots: at most this many scalars (ArviZ's limit is 40)


def _img(path):
    data = base64.b64encode(Path(path).read_bytes()).decode()
    return f'<img src="data:image/png;base64,{data}" alt="{html.escape(Path(path).stem)}">'


def _note(text):
    return f'<p class="note">{html.escape(text)}</p>' if text else ""


def _table(rows, columns=None, fmt="{:.4g}"):
    if not rows:
        return "<p>(empty)</p>"
    return as_frame(rows, columns).to_html(index=False, float_format=fmt.format, border=0)


def read_csv_rows(path):
    """CSV rows as dicts, numbers parsed (pandas), empty cells as ''."""
    frame = pd.read_csv(path, keep_default_na=False)
    rows = frame.to_dict(orient="records")
    for r in rows:
        for k, v in r.items():
            if isinstance(v, str) and v.lower() == "nan":
                r[k] = float("nan")
    return rows


def _point(tree):
    """The parameters a figure draws from a tree: its point, or the posterior mean."""
    post = tree["posterior"]
    return point_to_params({v: post[v].values.mean(axis=(0, 1)) for v in ("pi", "mu", "Sigma")},
                           tree.attrs["covariance_type"])


def _plot_coords(post, budget=_PLOT_SCALARS):
    """``coords`` keeping rank and trace plots within ArviZ's subplot limit, and what they keep."""
    K, d = post.sizes["component"], post.sizes["feature"]
    k_keep = min(K, max(1, budget // 2))
    f_keep = min(d, max(1, budget // k_keep - 1))
    coords, kept = {}, []
    if k_keep < K:
        coords["component"] = post["component"].values[:k_keep].tolist()
        kept.append(f"the first {k_keep} of {K} components")
    if f_keep < d:
        coords["feature"] = post["feature"].values[:f_keep].tolist()
        kept.append(f"mu of the first {f_keep} of {d} features")
    note = f"Showing {' and '.join(kept)}; the diagnostics table lists every scalar." if kept else ""
    return coords, note


def sections(folder, out=None, skip=(), ready=None):
    """Build the report's sections from the results in ``folder``, writing each figure as PNG.

    Reads what exists of ``em.nc``, ``em_mle.nc``, ``em_map.nc``, ``posterior.nc``,
    ``posterior_K*.nc``, ``predict.nc``, ``simulated.nc``, ``select.csv`` and ``run.json``.

    Parameters
    ----------
    folder : str or Path
        The results folder.
    out : str or Path or None
        Where to write the PNGs (default: ``folder``).
    skip : collection of str
        Section ids (see :data:`SECTIONS`) not to build now.
    ready : dict or None
        Sections already built (an earlier call's return value): kept, not built again.

    Returns
    -------
    dict
        Section id to HTML, for the sections whose inputs exist; ``"banner"`` holds the sampling
        warning, if any.
    """
    folder = Path(folder)
    out = folder if out is None else Path(out)
    if not folder.is_dir():
        raise FileNotFoundError(f"results folder {str(folder)!r} does not exist.")
    load = {p.stem: xr.open_datatree(p) for p in sorted(folder.glob("*.nc"))}
    record = json.loads((folder / "run.json").read_text()) if (folder / "run.json").exists() else {}
    post = load.get("posterior")
    em_map, em_mle = load.get("em_map"), load.get("em_mle")
    points = [t for t in (em_mle, em_map, load.get("em"), load.get("simulated"),
                          load.get("predict")) if t is not None]
    ref = post if post is not None else next(iter(points), None)
    if ref is None and not (folder / "select.csv").exists():
        raise FileNotFoundError(f"no results (*.nc or select.csv) in {str(folder)!r}; run gmm "
                                "fit, select or sample first.")
    body = dict(ready or {})
    done = set(body) | set(skip)

    def wanted(*ids):
        return any(i not in done for i in ids)

    ci = ci_label()

    if ref is not None:
        X = ref["observed_data"]["x"].values
    if ref is not None and wanted("data", "classification", "uncertainty", "density"):
        names = [str(n) for n in ref["observed_data"]["feature"].values]
        estimates = {_LABELS.get(t.attrs.get("method"), "model"): _point(t) for t in points}
        if X.shape[1] >= 2:
            body["data"] = _img(figures.ellipses(out / "data.png", X, names, estimates, post))
        else:
            body["data"] = "<p>One-dimensional data: ellipses need two features.</p>"
        main = post if post is not None else points[0]
        params, gamma = _point(main), main["responsibilities"]["gamma"].values
        for kind in ("classification", "uncertainty", "density"):
            path, note = figures.mclust_plot(out / f"{kind}.png", kind, X, names, params, gamma)
            body[kind] = _note(note) + _img(path)

    if (folder / "select.csv").exists() and wanted("selection"):
        rows = read_csv_rows(folder / "select.csv")
        ok = [r for r in rows if isinstance(r["bic"], float) and np.isfinite(r["bic"])]
        failed = [r for r in rows if r not in ok]
        body["selection"] = _img(figures.selection(out / "selection.png", ok)) + _table(
            sorted(ok, key=lambda r: r["bic"])[:8],
            ["K", "covariance_type", "log_likelihood", "n_parameters", "bic", "icl"]) + "".join(
            _note(f"K={r['K']} {r['covariance_type']} failed: {r.get('error', '')}")
            for r in failed)

    if post is not None and wanted("rank", "trace", "diagnostics", "energy", "forest", "comparison",
                                   "responsibilities", "ppc", "loo_pit"):
        problems = sampling_problems(post)
        if problems:
            body["banner"] = (f'<div class="banner">Sampling warning: {html.escape(problems)}. '
                              "The draws may not represent the posterior; sample longer or check "
                              "the model.</div>")
        coords, note = _plot_coords(post["posterior"])
        body["rank"] = _note(note) + _img(figures.arviz_plot(
            out / "rank.png", azp.plot_rank, post, var_names=["pi", "mu"], coords=coords))
        body["trace"] = _note(note) + _img(figures.arviz_plot(
            out / "trace.png", azp.plot_trace, post, var_names=["pi", "mu"], coords=coords))
        summ = summary(post, kind="diagnostics", round_to="none")
        n_div = int(post["sample_stats"]["diverging"].sum())
        diag_rows = [{"parameter": i, **{c: float(summ.loc[i, c]) for c in summ.columns}}
                     for i in summ.index]
        body["diagnostics"] = (f"<p>max r_hat = {summ['r_hat'].max():.4f}; min bulk ESS = "
                               f"{summ['ess_bulk'].min():.0f}; divergences = {n_div}.</p>"
                               + _table(diag_rows))
        body["energy"] = _img(figures.arviz_plot(out / "energy.png", azp.plot_energy, post))
        if em_map is not None:
            rows, agreement = compare(em_map, post, em_mle_dt=em_mle)
            shown = rows if len(rows) <= _FOREST_ROWS else [
                r for r in rows if not r["parameter"].startswith("Sigma")]
            body["forest"] = _note("" if shown is rows else f"{len(rows)} scalars: showing pi and "
                                   "mu; the table below lists every scalar.") + _img(
                figures.forest(out / "forest.png", shown, ci))
            body["comparison"] = _table(rows, ["parameter", "em_mle", "em", "mean", "sd", "lower",
                                               "upper", "inside", "r_hat", "ess_bulk"]
                                        if em_mle is not None else None)
            body["responsibilities"] = (
                _img(figures.responsibilities(out / "responsibilities.png",
                                              em_map["responsibilities"]["gamma"].values,
                                              post["responsibilities"]["gamma"].values))
                + f"<p>mean |EM gamma - posterior p(z|x)| = {agreement['mean_abs_gamma_diff']:.4f}"
                f"; max = {agreement['max_abs_gamma_diff']:.4f}; same most-likely component for "
                f"{100 * agreement['label_agreement']:.1f}% of observations.</p>")
        if "posterior_predictive" in post.children:
            d = X.shape[1]
            body["ppc"] = _note("" if d <= figures.MAX_PAIRS else
                                f"Showing the first {figures.MAX_PAIRS} of {d} features.") + _img(
                figures.ppc_marginals(out / "ppc.png", X, names, post))
            body["loo_pit"] = _img(figures.arviz_plot(out / "loo_pit.png", azp.plot_loo_pit,
                                                      loo_pit_view(post)))
    by_K = {int(k.split("_K")[1]): t for k, t in load.items() if k.startswith("posterior_K")}
    if len(by_K) >= 2 and wanted("loo"):
        table = []
        for K, t in sorted(by_K.items()):
            # a Pareto k above 0.7 is the table's max_pareto_k column, not a console warning
            with warnings.catch_warnings():
                warnings.filterwarnings("ignore", message="Estimated shape parameter of Pareto")
                res = az.loo(t)
            table.append({"K": K, "elpd_loo": float(res.elpd), "se": float(res.se),
                          "p_loo": float(res.p), "max_pareto_k": float(np.max(res.pareto_k))})
        body["loo"] = _img(figures.loo_plot(out / "loo.png", table)) + _table(table)
    if wanted("record"):
        body["record"] = _table([{"item": k, "value": json.dumps(v) if not isinstance(v, str)
                                  else v} for k, v in record.items()]) if record else (
            "<p>No run.json.</p>")
    return body


def render(folder, out=None, ready=None):
    """Render ``index.html`` from the results in ``folder``, and write each figure as PNG.

    A section whose inputs are missing says so (see :func:`sections` for the files read).

    Parameters
    ----------
    folder : str or Path
        The results folder.
    out : str or Path or None
        Where to write ``index.html`` and the PNGs (default: ``folder``).
    ready : dict or None
        Sections built before (:func:`sections`), for example while other results were still
        being computed; the rest are built now.

    Returns
    -------
    Path
        The HTML file.
    """
    folder = Path(folder)
    out = folder if out is None else Path(out)
    body = sections(folder, out, ready=ready)
    record = json.loads((folder / "run.json").read_text()) if (folder / "run.json").exists() else {}
    ci = ci_label()

    parts = []
    for sid, title, how in SECTIONS:
        content = body.get(sid, "<p><em>Not available in these results.</em></p>")
        parts.append(f'<section id="{sid}"><h2>{html.escape(title)}</h2>'
                     f'<p class="how">How to read it: {html.escape(how.format(ci=ci))}</p>'
                     f'{content}</section>')
    page = _PAGE.format(title=html.escape(record.get("title", "gmm-suite report")),
                        body=body.get("banner", "") + "\n".join(parts))
    path = out / "index.html"
    path.write_text(page)
    return path


_PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<style>
body {{ font-family: system-ui, sans-serif; max-width: 1000px; margin: 2em auto; color: #222; }}
h1 {{ font-size: 1.6em; }} h2 {{ font-size: 1.2em; border-bottom: 1px solid #ddd; }}
.how {{ color: #555; font-style: italic; }}
.note {{ color: #555; }}
.banner {{ background: #fde2e1; border: 1px solid #c0392b; padding: 0.6em; font-weight: bold; }}
img {{ max-width: 100%; }}
table {{ border-collapse: collapse; font-size: 0.8em; margin: 0.5em 0; }}
td, th {{ border: 1px solid #ddd; padding: 2px 6px; text-align: right; }}
</style></head><body>
<h1>{title}</h1>
{body}
</body></html>
"""
