"""Render a results folder as one self-contained HTML page (figures embedded, PNGs beside it).

The page is a table of sections (:data:`SECTIONS`), one entry each: an id, a title, how to read
it, and a function that builds its HTML from the folder's results (:class:`Results`), or returns
None when the results lack what it shows. Only sections with content are rendered. Adding a
section means adding one entry and its test.
"""

from __future__ import annotations

import base64
import html
import json
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import arviz as az
import arviz_plots as azp
import numpy as np
import pandas as pd
import xarray as xr

from models.families import family
from models.results import covariance_type_of, invariant_diagnostics, loo_pit_view, point_of
from reports import figures, modes
from reports.compare import ci_label, compare, compare_vb, sampling_problems, summary
from reports.tables import as_frame

#: estimate label of each EM-like file's ``method`` attribute
_LABELS = {"em-mle": "EM MLE", "em-map": "EM MAP", "vb": "VB", "truth": "true mixture"}
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
    """CSV rows as dicts: numbers parsed (``nan`` too), text as written, empty cells as ''."""
    frame = pd.read_csv(path, keep_default_na=False, na_values=["nan", "NaN"])
    return frame.to_dict(orient="records")


def _cell(value, fmt="{:.5g}", interval=None, missing="-"):
    """A numeric table cell: shown with ``fmt``, its full value (and interval) in data- attributes."""
    if value is None or (isinstance(value, float) and not np.isfinite(value)):
        return f"<td>{missing}</td>"
    attrs = f' data-value="{float(value)!r}"'
    text = fmt.format(value)
    if interval is not None:
        lo, hi = interval
        attrs += f' data-lower="{float(lo)!r}" data-upper="{float(hi)!r}"'
        text += f" [{fmt.format(lo)}, {fmt.format(hi)}]"
    return f"<td{attrs}>{html.escape(text)}</td>"


def _grid(table_id, header, rows):
    """An HTML table whose body cells are ready-made ``<td>``s (or text), first column a label."""
    head = "".join(f"<th>{html.escape(str(h))}</th>" for h in header)
    body = "".join("<tr>" + "".join(c if str(c).startswith("<td") else
                                    f"<td>{html.escape(str(c))}</td>" for c in row) + "</tr>"
                   for row in rows)
    return (f'<div class="wide"><table class="values" id="{table_id}"><thead><tr>{head}</tr>'
            f"</thead><tbody>{body}</tbody></table></div>")


def model_description(covariance_type):
    """The model's mclust name and what its letters constrain, e.g. ``"VVE (ellipsoidal, ...)"``."""
    name = family(covariance_type).name
    volume, shape, orientation = name
    if shape == "I":
        kind, parts = "spherical", [("volume", volume)]
    elif orientation == "I":
        kind, parts = "diagonal", [("volume", volume), ("shape", shape)]
    else:
        kind, parts = "ellipsoidal", [("volume", volume), ("shape", shape),
                                      ("orientation", orientation)]
    said = ", ".join(f"{'equal' if v == 'E' else 'varying'} {what}" for what, v in parts)
    alias = "" if name == covariance_type else f"; scikit-learn's {covariance_type!r}"
    return f"{name} ({kind}: {said}{alias})"


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


@dataclass(frozen=True)
class Section:
    """One section of the report.

    Attributes
    ----------
    id : str
        The HTML id (and the PNG's name, where it has one figure).
    title : str
    how : str
        How to read it; ``{ci}`` is replaced by ArviZ's default interval.
    build : callable
        ``build(results, out) -> str, (str, str) or None``: the section's HTML (figures written
        into ``out``), or with the how-to-read text these results need instead of ``how``, or
        None when the results lack what it shows.
    """

    id: str
    title: str
    how: str
    build: Callable


class Results:
    """What a results folder holds, read once and shared by the sections.

    Parameters
    ----------
    folder : Path
    """

    def __init__(self, folder):
        self.folder = Path(folder)
        self.trees = {p.stem: xr.open_datatree(p) for p in sorted(self.folder.glob("*.nc"))}
        path = self.folder / "run.json"
        self.record = json.loads(path.read_text()) if path.exists() else {}
        self.post = self.trees.get("posterior")
        self.em_map, self.em_mle = self.trees.get("em_map"), self.trees.get("em_mle")
        self.vb = self.trees.get("vb")
        self.points = [t for t in (self.em_mle, self.em_map, self.trees.get("em"), self.vb,
                                   self.trees.get("simulated"), self.trees.get("predict"),
                                   self.trees.get("impute"))
                       if t is not None]
        self.ref = self.post if self.post is not None else next(iter(self.points), None)
        self.selection_path = self.folder / "select.csv"
        if self.ref is None and not self.selection_path.exists():
            raise FileNotFoundError(f"no results (*.nc or select.csv) in {str(self.folder)!r}; "
                                    "run gmm fit, select or sample first.")

    @cached_property
    def X(self):
        """The observed data, (N, d)."""
        return self.ref["observed_data"]["x"].values

    @cached_property
    def names(self):
        """The features' names."""
        return [str(n) for n in self.ref["observed_data"]["feature"].values]

    @cached_property
    def main(self):
        """The tree the classification figures show: the posterior, else the first point."""
        return self.post if self.post is not None else self.points[0]

    @cached_property
    def comparison(self):
        """EM against the posterior: the rows and the responsibilities' agreement."""
        return compare(self.em_map, self.post, em_mle_dt=self.em_mle)

    @cached_property
    def diagnostics(self):
        """ArviZ's diagnostics of every scalar of the posterior."""
        return summary(self.post, kind="diagnostics", round_to="none")


def _interval_prob():
    """The probability of the summary's posterior intervals: ArviZ's default, equal-tailed."""
    return float(az.rcParams["stats.ci_prob"])


def _estimates(res):
    """One row per estimate in the folder: what it is, its fit and its criteria."""
    N = res.X.shape[0]
    rows = []
    for t in res.points:
        params = point_of(t)
        label = _LABELS.get(t.attrs.get("method"), "model")
        log_lik = t.attrs.get("log_likelihood")
        if log_lik is None:
            log_lik = float(t["log_likelihood"]["x"].values.sum())
        df = params.n_parameters
        gamma = t["responsibilities"]["gamma"].values
        bic = t.attrs.get("bic", -2.0 * log_lik + df * np.log(N))
        icl = t.attrs.get("icl", bic - 2.0 * np.log(gamma.max(axis=1)).sum())
        rows.append([label, model_description(covariance_type_of(t)), params.K, N,
                     _cell(log_lik, "{:.4f}"), df, _cell(bic, "{:.3f}"), _cell(icl, "{:.3f}")])
    if res.post is not None:
        ll = res.post["log_likelihood"]["x"].values.sum(axis=-1)
        post = res.post["posterior"]
        size = f"{post.sizes['chain']} chains x {post.sizes['draw']} draws"
        rows.append([f"posterior ({size}; mean log-likelihood)",
                     model_description(covariance_type_of(res.post)), post.sizes["component"], N,
                     _cell(float(ll.mean()), "{:.4f}"), point_of(res.post).n_parameters, "-", "-"])
    return rows


def _summary(res, out):
    if res.ref is None:
        return None
    tree = res.main
    names, post = res.names, res.post
    fam = family(covariance_type_of(tree))
    K, d = tree["posterior"]["pi"].shape[-1], len(names)
    z = tree["responsibilities"]["gamma"].values.argmax(axis=1)
    counts = np.bincount(z, minlength=K)
    if post is not None:
        prob = _interval_prob()
        draws = {v: tree["posterior"][v].values.reshape(-1, *tree["posterior"][v].shape[2:])
                 for v in ("pi", "mu", "Sigma")}
        draws["Sigma"] = np.stack([fam.to_full(S, K, d) for S in draws["Sigma"]])
        lo = {v: np.quantile(a, (1 - prob) / 2, axis=0) for v, a in draws.items()}
        hi = {v: np.quantile(a, (1 + prob) / 2, axis=0) for v, a in draws.items()}
        mean = {v: a.mean(axis=0) for v, a in draws.items()}
        what = (f"posterior mean [{prob:.0%} equal-tailed interval] over "
                f"{draws['pi'].shape[0]} draws")

        def cell(v, *index):
            return _cell(mean[v][index], "{:.4g}", (lo[v][index], hi[v][index]))
    else:
        # the file's values as written (point_of renormalises pi, which can move it by an ulp)
        point = {v: tree["posterior"][v].values[0, 0] for v in ("pi", "mu", "Sigma")}
        mean = {"pi": point["pi"], "mu": point["mu"],
                "Sigma": fam.to_full(point["Sigma"], K, d)}
        what = _LABELS.get(tree.attrs.get("method"), "the model's") + " estimate"

        def cell(v, *index):
            return _cell(mean[v][index])
    parts = [_grid("summary-fit", ["estimate", "model", "K", "N", "log-likelihood", "df", "BIC",
                                   "ICL"], _estimates(res)),
             f"<h3>Components: {html.escape(what)}</h3>",
             _grid("summary-components", ["component", "observations (most likely)", "pi"],
                   [[k, counts[k], cell("pi", k)] for k in range(K)]),
             "<h3>Means mu</h3>",
             _grid("summary-mu", ["feature"] + [f"component {k}" for k in range(K)],
                   [[n] + [cell("mu", k, j) for k in range(K)] for j, n in enumerate(names)])]
    shared = fam.storage.shared
    for k in range(1 if shared else K):
        title = "shared by every component" if shared else f"component {k}"
        parts += [f"<h3>Covariance Sigma, {title}</h3>",
                  _grid(f"summary-Sigma-{k}", ["feature"] + list(names),
                        [[n] + [cell("Sigma", k, i, j) for j in range(d)]
                         for i, n in enumerate(names)])]
    return "\n".join(parts)


def _data(res, out):
    if res.ref is None:
        return None
    if res.X.shape[1] < 2:
        return "<p>One-dimensional data: ellipses need two features.</p>"
    estimates = {_LABELS.get(t.attrs.get("method"), "model"): point_of(t) for t in res.points}
    gamma = res.main["responsibilities"]["gamma"].values
    how = ("Each point in the colour of its most likely component; each component's ellipses "
           "hold 39% (1-sigma, thick) or 86% (2-sigma, thin) of its mass in the first two "
           "features, one line style per estimate.")
    if res.post is not None:
        how += (" The faint ellipses are 50 posterior draws (2-sigma): their spread is the "
                "posterior uncertainty.")
    return _img(figures.ellipses(out / "data.png", res.X, res.names, estimates, res.post,
                                 gamma)), how


def _mclust_plot(kind):
    def build(res, out):
        if res.ref is None:
            return None
        params, gamma = point_of(res.main), res.main["responsibilities"]["gamma"].values
        path, note = figures.mclust_plot(out / f"{kind}.png", kind, res.X, res.names, params,
                                         gamma)
        return _note(note) + _img(path)

    return build


def _selection(res, out):
    if not res.selection_path.exists():
        return None
    rows = read_csv_rows(res.selection_path)
    failed = [r for r in rows if not np.isfinite(r["bic"])]
    types = list(dict.fromkeys(r["covariance_type"] for r in rows))
    Ks = sorted({r["K"] for r in rows})
    parts = [_img(figures.selection(out / "selection.png", rows))]
    for crit in ("bic", "icl"):
        value = {(r["K"], r["covariance_type"]): r[crit] for r in rows}
        top = sorted((r for r in rows if np.isfinite(r[crit])), key=lambda r: r[crit])[:3]
        best = (top[0]["K"], top[0]["covariance_type"]) if top else None
        grid = [[K] + [_cell(value.get((K, t), np.nan), "{:.2f}", missing="failed").replace(
            "<td", '<td class="best"', 1) if (K, t) == best else _cell(
            value.get((K, t), np.nan), "{:.2f}", missing="failed") for t in types] for K in Ks]
        parts += [f"<h3>{crit.upper()} of every fit (lower is better; mclust prints "
                  f"-{crit.upper()})</h3>", _grid(f"select-{crit}", ["K"] + types, grid),
                  "<p>Top 3 by " + crit.upper() + ": " + html.escape("; ".join(
                      f"{r['covariance_type']},{r['K']} ({r[crit]:.2f})" for r in top)) + "</p>"]
    if failed:
        parts.append(f"<h3>Fits that failed ({len(failed)} of {len(rows)})</h3><ul>" + "".join(
            f"<li>K={r['K']} {html.escape(r['covariance_type'])}: "
            f"{html.escape(str(r.get('error') or 'failed'))}</li>" for r in failed) + "</ul>")
    return "\n".join(parts)


def _arviz_plot(sid, fn):
    def build(res, out):
        if res.post is None:
            return None
        coords, note = _plot_coords(res.post["posterior"])
        return _note(note) + _img(figures.arviz_plot(out / f"{sid}.png", fn, res.post,
                                                     var_names=["pi", "mu"], coords=coords))

    return build


def _diagnostics(res, out):
    if res.post is None:
        return None
    summ = res.diagnostics
    stats = res.post["sample_stats"]
    n_div = int(stats["diverging"].sum()) if "diverging" in stats else 0
    rows = [{"parameter": i, **{c: float(summ.loc[i, c]) for c in summ.columns}}
            for i in summ.index]
    return (f"<p>max r_hat = {summ['r_hat'].max():.4f}; min bulk ESS = "
            f"{summ['ess_bulk'].min():.0f}; divergences = {n_div}.</p>" + _table(rows))


def _energy(res, out):
    if res.post is None or "energy" not in res.post["sample_stats"]:   # Gibbs has no energy
        return None
    return _img(figures.arviz_plot(out / "energy.png", azp.plot_energy, res.post))


def _forest(res, out):
    if res.post is None or res.em_map is None:
        return None
    rows, _ = res.comparison
    shown = rows if len(rows) <= _FOREST_ROWS else [
        r for r in rows if not r["parameter"].startswith("Sigma")]
    return _note("" if shown is rows else f"{len(rows)} scalars: showing pi and mu; the table "
                 "below lists every scalar.") + _img(figures.forest(out / "forest.png", shown,
                                                                    ci_label()))


def _comparison(res, out):
    if res.post is None or res.em_map is None:
        return None
    rows, _ = res.comparison
    return _table(rows, ["parameter", "em_mle", "em", "mode_mean", "mean", "sd", "lower",
                         "upper", "inside", "r_hat", "ess_bulk"] if res.em_mle is not None
                  else None)


def _variational(res, out):
    if res.vb is None or res.post is None or res.em_map is None:
        return None
    rows = compare_vb(res.comparison[0], res.vb, res.post)
    cover = [r["vb_coverage"] for r in rows]
    ratio = [r["vb_sd_ratio"] for r in rows]
    return (f"<p>VB's intervals hold {min(cover):.0%}-{max(cover):.0%} of the posterior's draws "
            f"(median {np.median(cover):.0%}); its sds are {min(ratio):.2f}-{max(ratio):.2f} of "
            f"the posterior's; its means lie within {max(abs(r['vb_z']) for r in rows):.2f} "
            "posterior sd of the posterior's.</p>"
            + _img(figures.vb_intervals(out / "variational.png", rows, ci_label()))
            + _table(rows, ["parameter", "em_mle", "em", "vb", "mean", "vb_sd", "sd",
                            "vb_sd_ratio", "vb_z", "vb_coverage"]))


def _ppc(res, out):
    if res.post is None or "posterior_predictive" not in res.post.children:
        return None
    d = res.X.shape[1]
    return _note("" if d <= figures.MAX_PAIRS else
                 f"Showing the first {figures.MAX_PAIRS} of {d} features.") + _img(
        figures.ppc_marginals(out / "ppc.png", res.X, res.names, res.post))


def _loo_pit(res, out):
    if res.post is None or not {"posterior_predictive", "log_likelihood"} <= set(res.post.children):
        return None      # the pointwise log-likelihood is left out of very large posteriors
    return _img(figures.arviz_plot(out / "loo_pit.png", azp.plot_loo_pit, loo_pit_view(res.post)))


def _responsibilities(res, out):
    if res.post is None or res.em_map is None:
        return None
    _, agreement = res.comparison
    return (_img(figures.responsibilities(out / "responsibilities.png",
                                          res.em_map["responsibilities"]["gamma"].values,
                                          res.post["responsibilities"]["gamma"].values))
            + f"<p>mean |EM gamma - posterior p(z|x)| = {agreement['mean_abs_gamma_diff']:.4f}"
            f"; max = {agreement['max_abs_gamma_diff']:.4f}; same most-likely component for "
            f"{100 * agreement['label_agreement']:.1f}% of observations.</p>")


def _loo(res, out):
    by_K = {int(k.split("_K")[1]): t for k, t in res.trees.items()
            if k.startswith("posterior_K") and "log_likelihood" in t.children}
    if len(by_K) < 2:
        return None
    table = []
    for K, t in sorted(by_K.items()):
        # a Pareto k above 0.7 is the table's max_pareto_k column, not a console warning
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="Estimated shape parameter of Pareto")
            loo = az.loo(t)
        table.append({"K": K, "elpd_loo": float(loo.elpd), "se": float(loo.se),
                      "p_loo": float(loo.p), "max_pareto_k": float(np.max(loo.pareto_k))})
    return _img(figures.loo_plot(out / "loo.png", table)) + _table(table)


def _modes(res, out):
    path = res.folder / "modes.csv"
    if not path.exists():
        return None
    rows = read_csv_rows(path)
    local = res.folder / "local_modes.csv"
    local_rows = read_csv_rows(local) if local.exists() else None
    lines = "".join(f"<p><strong>{html.escape(line)}</strong></p>" for line in (
        modes.summary_line(rows, name, local_rows) for name in ("EM MAP", "EM MLE")) if line)
    parts = [lines, _table(modes.display_rows(rows), ["mode", "pi", "N_k", "log_posterior",
                                                       "local_modes", "restarts", "share", "em"])]
    if local_rows:
        parts.append(f"<details><summary>Every local mode EM reached ({len(local_rows)}), with "
                     f"its log posterior</summary>{_table(local_rows)}</details>")
    if res.post is not None and "modes" in res.post.children:
        shares = [float(r["share"]) for r in rows]
        parts.append(_img(figures.modes_trace(out / "modes.png",
                                              res.post["modes"]["mode"].values, shares)))
    return "".join(parts)


def _invariant(res, out):
    if res.post is None or "label_invariant" not in res.post.children:
        return None
    summ = invariant_diagnostics(res.post)
    rows = [{"quantity": i, **{c: float(summ.loc[i, c]) for c in summ.columns}}
            for i in summ.index]
    head = (f"<p>max r_hat = {summ['r_hat'].max():.4f}; min bulk ESS = "
            f"{summ['ess_bulk'].min():.0f}; min tail ESS = {summ['ess_tail'].min():.0f}.</p>")
    return head + _table(rows) + _img(figures.arviz_plot(
        out / "invariant_rank.png", azp.plot_rank, res.post, group="label_invariant",
        **rank_thinning(res.post, summ)))


def rank_thinning(tree, summ):
    """``plot_rank``'s thinning: every k-th draw, k = 2 x draws / the smallest ESS shown.

    Its multi-chain test takes the draws as independent: on autocorrelated draws it rejects
    chains that r_hat rightly accepts (4 chains of 1000 AR(1) draws with rho = 0.6 give
    p < 0.01 nearly half the time). Thinned to the ESS it still rejects NUTS's converged chains
    too often; to half the ESS it does not.
    """
    n = tree["posterior"].sizes["chain"] * tree["posterior"].sizes["draw"]
    ess = np.nanmin(summ[["ess_bulk", "ess_tail"]].to_numpy())
    factor = int(np.ceil(2 * n / ess)) if np.isfinite(ess) and ess > 0 else 1
    return {"thin": factor > 1, "stats": {"thin": {"factor": factor}}}


def _rank(res, out):
    if res.post is None:
        return None
    coords, note = _plot_coords(res.post["posterior"])
    return _note(note) + _img(figures.arviz_plot(
        out / "rank.png", azp.plot_rank, res.post, var_names=["pi", "mu"], coords=coords,
        **rank_thinning(res.post, res.diagnostics)))


def _allocation(res, out):
    if res.post is None or "responsibilities" not in res.post.children:
        return None
    p_same = (res.post["coclustering"]["p_same"].values if "coclustering" in res.post.children
              else None)
    note = "" if p_same is not None else _note(
        "This sampler gives no co-clustering matrix (the Gibbs route does, up to 2000 "
        "observations).")
    return note + _img(figures.allocation(out / "allocation.png",
                                          res.post["responsibilities"]["gamma"].values, p_same))


def _record(res, out):
    if not res.record:
        return None
    return _table([{"item": k, "value": json.dumps(v) if not isinstance(v, str) else v}
                   for k, v in res.record.items()])


#: every section, in the page's order; ``{ci}`` in ``how`` is ArviZ's default interval
SECTIONS = (
    Section("summary", "Summary: the fitted model and its estimates",
            "As mclust's summary(fit, parameters = TRUE): each estimate's log-likelihood, number of"
            " free parameters (df), BIC and ICL (scikit-learn's sign: lower is better; mclust "
            "prints the negative), then the chosen estimate's components: how many observations "
            "each is the most likely for, its weight pi, its mean mu and covariance Sigma.",
            _summary),
    Section("selection", "Model selection: BIC and ICL over K and covariance types",
            "One line per covariance model, as mclust's BIC plot: lower is better (scikit-learn's "
            "sign; mclust plots the negative). ICL adds a penalty for overlapping components, so it"
            " prefers well-separated clusters. The best fit of each table is in bold.",
            _selection),
    Section("data", "Data and fitted components",
            "Each point in the colour of its most likely component; each component's ellipses hold "
            "39% (1-sigma, thick) or 86% (2-sigma, thin) of its mass in the first two features.",
            _data),
    Section("classification", "Classification (mclust's plot)",
            "Each observation coloured by its most likely component, with 2-sigma ellipses, for every"
            " pair of features: well separated colours mean well separated clusters.",
            _mclust_plot("classification")),
    Section("uncertainty", "Classification uncertainty (mclust's plot)",
            "Uncertainty 1 - max_k gamma(z_nk): 0 for an observation certainly in one component, up "
            "to 1 - 1/K where components overlap. Every observation is drawn, as mclust draws it: "
            "small and light below the 75% quantile of the uncertainty, larger and darker to the 95%"
            " quantile, large and black above it. The diagonal: each coordinate's histogram, the "
            "top 5% as a rug.",
            _mclust_plot("uncertainty")),
    Section("density", "Mixture density (mclust's plot)",
            "Contours of the fitted mixture density over each pair of features, and each feature's "
            "marginal density over its histogram.",
            _mclust_plot("density")),
    Section("modes", "Modes of the posterior",
            "EM's MAP from many restarts ends at several local modes; those that differ only in "
            "where a light component sits are one row. Every posterior draw lies nearest one "
            "local mode (by its weights, and its means weighted by their component's weight, "
            "under the best matching of labels): a row's share is its share of the draws. "
            "'em' names the EM estimates that lie nearest each row; N_k are the component "
            "sizes (sums of responsibilities) at the row's highest local mode.",
            _modes),
    Section("invariant", "Convergence of the label-invariant quantities",
            "The log likelihood, the log posterior and the weights sorted by size do not depend "
            "on how the components are labelled, so they speak for the chains whatever the "
            "relabelling did: judge convergence here first. r_hat should be at most 1.01 and "
            "bulk ESS at least 400; the rank plots of the same quantities (thinned to half "
            "their smallest ESS, as the test takes the draws as independent) should stay "
            "inside their envelope. r_hat compares the chains' centres and spreads, the rank "
            "test their whole distributions: where only the test flags a chain (black), the "
            "chains differ in a tail, not in where they sit. A chain that stays in another "
            "mode shows in both.",
            _invariant),
    Section("rank", "Rank plots",
            "Ranks of each chain's draws among all draws: flat histograms inside the envelope mean "
            "the chains explore the same distribution. The draws are thinned to half their "
            "smallest ESS first: the test takes them as independent.",
            _rank),
    Section("trace", "Trace plots",
            "Draws against iteration for every chain: overlapping, stationary 'hairy caterpillars' "
            "are what convergence looks like.",
            _arviz_plot("trace", azp.plot_trace)),
    Section("diagnostics", "Convergence: r_hat, ESS and divergences",
            "r_hat should be at most 1.01 and bulk ESS at least 400 per scalar; any divergence flags "
            "a region NUTS could not integrate accurately. Each covariance entry is listed once.",
            _diagnostics),
    Section("energy", "Energy plot",
            "Marginal energy against energy transitions: similar widths (BFMI above 0.3) mean the "
            "sampler moves efficiently between energy levels.",
            _energy),
    Section("forest", "Posterior intervals with EM estimates",
            "Every scalar on a common scale (posterior sd units): the blue bar is the posterior {ci};"
            " the EM MAP (diamond) sits at a mode of the posterior (the modes section says how much of "
            "the posterior lies near it), the MLE (cross) nearby.",
            _forest),
    Section("comparison", "EM against the posterior, scalar by scalar",
            "EM estimate, posterior mean, sd, {ci} (lower, upper), r_hat and ESS; 'inside' says "
            "whether EM lies inside the posterior interval. mode_mean is the posterior mean over "
            "the draws of the mode EM's MAP belongs to (the modes section).",
            _comparison),
    Section("variational", "Variational Bayes against the posterior",
            "The same model and prior by three estimators: EM (MLE, MAP), variational Bayes and "
            "the posterior's draws. Per scalar: VB's {ci} (orange) under the posterior's (blue), "
            "in posterior sd units, and the share of the posterior's draws inside VB's interval "
            "(in brackets; the interval's probability when VB is right). Mean-field VB tends to "
            "sds that are too small and to one mode of a multimodal posterior.",
            _variational),
    Section("ppc", "Posterior predictive check",
            "Observed marginal densities (black) against data sets simulated from posterior draws "
            "(blue): the black line should look like one of the blue ones.",
            _ppc),
    Section("loo_pit", "LOO-PIT",
            "Leave-one-out probability integral transform of each observed value (each feature of a "
            "left-out observation, weighted by PSIS): the ECDF of the values should stay inside the "
            "band of a uniform distribution. An S shape means the predictive spread is too wide, its "
            "mirror image too narrow.",
            _loo_pit),
    Section("responsibilities", "EM responsibilities against posterior p(z | x)",
            "One point per observation and component: points on the diagonal mean EM's gamma(z_nk) "
            "equals the posterior probability of the assignment.",
            _responsibilities),
    Section("allocation", "Allocation probabilities",
            "Each row an observation, ordered by its most probable component (then the most "
            "certain first); each column a component of the posterior's labels; the shade is "
            "p(z_n = k | data). Where the sampler gives it, the co-clustering matrix p(z_n = "
            "z_m | data) in the same order: solid blocks are clusters the posterior is sure of, "
            "whatever the labels.",
            _allocation),
    Section("loo", "LOO across K",
            "Expected log predictive density (PSIS-LOO) of each sampled K, with its standard error: "
            "higher is better; differences within about 2 SE are not decisive.",
            _loo),
    Section("record", "Run record",
            "How this report was made: the command, seed, versions, timings and the label alignment "
            "applied to the draws.",
            _record),
)


def _banner(res):
    """The sampling warning above every section, if the draws show problems."""
    if res.post is None:
        return ""
    problems = sampling_problems(res.post)
    if not problems:
        return ""
    return (f'<div class="banner">Sampling warning: {html.escape(problems)}. The draws may not '
            "represent the posterior; sample longer or check the model.</div>")


def sections(folder, out=None, skip=(), ready=None):
    """Build the report's sections from the results in ``folder``, writing each figure as PNG.

    Reads what exists of ``em.nc``, ``em_mle.nc``, ``em_map.nc``, ``vb.nc``, ``posterior.nc``,
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
        Section id to HTML, for the sections with content; ``"banner"`` holds the sampling
        warning, if any.
    """
    folder = Path(folder)
    out = folder if out is None else Path(out)
    if not folder.is_dir():
        raise FileNotFoundError(f"results folder {str(folder)!r} does not exist.")
    res = Results(folder)
    body = dict(ready or {})
    if "banner" not in body:
        body["banner"] = _banner(res)
    for section in SECTIONS:
        if section.id in body or section.id in skip:
            continue
        content = section.build(res, out)
        if content is not None:
            body[section.id] = content
    return body


def render(folder, out=None, ready=None):
    """Render ``index.html`` from the results in ``folder``, and write each figure as PNG.

    Only the sections whose inputs exist appear (see :func:`sections` for the files read).

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
    for s in SECTIONS:
        if s.id not in body:
            continue
        content, how = body[s.id] if isinstance(body[s.id], tuple) else (body[s.id], s.how)
        parts.append(f'<section id="{s.id}"><h2>{html.escape(s.title)}</h2>'
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
body {{ font-family: system-ui, sans-serif; max-width: 1250px; margin: 2em auto; color: #222; }}
h1 {{ font-size: 1.6em; }} h2 {{ font-size: 1.2em; border-bottom: 1px solid #ddd; }}
.how {{ color: #555; font-style: italic; }}
.note {{ color: #555; }}
.banner {{ background: #fde2e1; border: 1px solid #c0392b; padding: 0.6em; font-weight: bold; }}
img {{ max-width: 100%; }}
table {{ border-collapse: collapse; font-size: 0.8em; margin: 0.5em 0; }}
td, th {{ border: 1px solid #ddd; padding: 2px 6px; text-align: right; }}
td.best {{ font-weight: bold; background: #eef5ff; }}
table.values td:first-child, table.values th:first-child {{ text-align: left; }}
.wide {{ overflow-x: auto; max-width: 100%; }}
h3 {{ font-size: 1em; margin: 1em 0 0.2em; }}
</style></head><body>
<h1>{title}</h1>
{body}
</body></html>
"""
