"""Figures of the report; each function writes one PNG and returns its path."""

from __future__ import annotations

import warnings

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.patches import Ellipse  # noqa: E402

from models.results import point_to_params  # noqa: E402

COLORS = {"EM MLE": "C3", "EM MAP": "C2", "posterior mean": "k", "VB": "C1"}
MAX_PAIRS = 8           # pairs plots, marginal plots: past this many features, principal components
#: mclust's 14 models in its BIC plot: each its own colour and symbol
MODEL_STYLES = dict(zip(
    ("EII", "VII", "EEI", "VEI", "EVI", "VVI", "EEE", "VEE", "EVE", "VVE", "EEV", "VEV", "EVV",
     "VVV"),
    zip(("#808080", "#000000", "#e41a1c", "#377eb8", "#4daf4a", "#984ea3", "#ff7f00", "#a65628",
         "#f781bf", "#1b9e77", "#d95f02", "#7570b3", "#e7298a", "#66a61e"),
        ("o", "s", "^", "v", "D", "P", "X", "*", "<", ">", "h", "p", "8", "d"))))


def component_color(k):
    """Component ``k``'s colour, the same in every figure of a report."""
    return f"C{k % 10}"


def component_legend(fig_or_ax, K, **kwargs):
    """A legend of the component colours (``component 0`` ... ``component K-1``)."""
    from matplotlib.patches import Patch

    handles = [Patch(color=component_color(k), label=f"component {k}") for k in range(K)]
    return fig_or_ax.legend(handles=handles, **kwargs)


def _save(fig, path, tight=True, dpi=90):
    fig.savefig(path, dpi=dpi, bbox_inches="tight" if tight else None)
    plt.close(fig)
    return path


def _ellipse(ax, mean, cov, n_sigma, **kw):
    vals, vecs = np.linalg.eigh(cov)
    angle = np.degrees(np.arctan2(vecs[1, -1], vecs[0, -1]))
    w, h = 2 * n_sigma * np.sqrt(vals[::-1])
    ax.add_patch(Ellipse(mean, w, h, angle=angle, fill=False, **kw))


def ellipses(path, X, names, estimates, post_dt=None, gamma=None, n_draws=50, seed=0):
    """Data with the 1- and 2-sigma ellipses of each estimate, and a spread of posterior draws.

    Each component keeps its colour (:func:`component_color`); each estimate has its own line
    style (solid, dashed, dotted, in the order given).

    Parameters
    ----------
    path : Path
    X : ndarray of shape (N, d)
        Only the first two columns are drawn.
    names : list of str
    estimates : dict of str to GMMParams
    post_dt : DataTree or None
    gamma : ndarray of shape (N, K) or None
        Responsibilities: each point in its most likely component's colour (None: grey).
    n_draws : int
    seed : int

    Returns
    -------
    Path
    """
    from matplotlib.lines import Line2D

    fig, ax = plt.subplots(figsize=(8, 5))
    fig.subplots_adjust(left=0.1, right=0.74, bottom=0.11, top=0.92)
    if gamma is None:
        ax.scatter(X[:, 0], X[:, 1], s=8, color="0.6")
    else:
        z = gamma.argmax(axis=1)
        for k in range(gamma.shape[1]):
            ax.scatter(X[z == k, 0], X[z == k, 1], s=8, color=component_color(k), alpha=0.45)
    handles = []
    if post_dt is not None:
        post = post_dt["posterior"]
        ct = post_dt.attrs["covariance_type"]
        C, D = post["pi"].shape[:2]
        rng = np.random.default_rng(seed)
        for i in rng.choice(C * D, size=min(n_draws, C * D), replace=False):
            p = point_to_params({v: post[v].values[i // D, i % D] for v in ("pi", "mu", "Sigma")},
                                ct).to_full()
            for k in range(p.K):
                _ellipse(ax, p.mu[k, :2], p.Sigma[k, :2, :2], 2, color=component_color(k),
                         alpha=0.12, lw=1)
        handles.append(Line2D([], [], color="0.5", alpha=0.5,
                              label=f"{n_draws} posterior draws (2-sigma)"))
    for i, (label, p) in enumerate(estimates.items()):
        full = p.to_full()
        style = ("-", "--", ":", "-.")[i % 4]
        for k in range(full.K):
            for n_sigma, lw in ((1, 1.6), (2, 1.0)):
                _ellipse(ax, full.mu[k, :2], full.Sigma[k, :2, :2], n_sigma,
                         color=component_color(k), ls=style, lw=lw)
        handles.append(Line2D([], [], color="k", ls=style, label=label))
    K = max([p.K for p in estimates.values()] + [0 if gamma is None else gamma.shape[1]])
    ax.set_xlabel(names[0])
    ax.set_ylabel(names[1] if len(names) > 1 else "")
    fig.legend(handles=handles, title="estimate (line style)", fontsize=8, title_fontsize=8,
               loc="upper left", bbox_to_anchor=(0.75, 0.92), frameon=False)
    component_legend(fig, K, title="component (colour)", fontsize=8, title_fontsize=8,
                     loc="lower left", bbox_to_anchor=(0.75, 0.11), frameon=False)
    ax.set_title("Components: 1-sigma (thick) and 2-sigma (thin) ellipses", fontsize=10)
    return _save(fig, path, tight=False)


def selection(path, rows, criteria=("bic", "icl")):
    """BIC and ICL over K, one line per covariance model, as mclust's BIC plot draws them.

    Each model has its own colour and symbol (:data:`MODEL_STYLES`); a failed fit is a gap. Lower
    is better (scikit-learn's sign; mclust plots the negative).

    Parameters
    ----------
    path : Path
    rows : list of dict
        :func:`reports.select.select_grid` rows (failed fits have NaN criteria).
    criteria : tuple of str

    Returns
    -------
    Path
    """
    types = list(dict.fromkeys(r["covariance_type"] for r in rows))
    Ks = sorted({r["K"] for r in rows})
    fig, axes = plt.subplots(1, len(criteria), figsize=(5.2 * len(criteria) + 1.6, 4.2),
                             squeeze=False)
    for ax, crit in zip(axes[0], criteria):
        for i, ct in enumerate(types):
            color, marker = MODEL_STYLES.get(ct, (f"C{i % 10}", "o"))
            value = {r["K"]: r[crit] for r in rows if r["covariance_type"] == ct}
            ax.plot(Ks, [value.get(K, np.nan) for K in Ks], "-", marker=marker, color=color,
                    label=ct, ms=5, lw=1)
        ax.set_xlabel("K (components)")
        ax.set_xticks(Ks)
        ax.set_ylabel(f"{crit.upper()} (lower is better)")
        ax.set_title(crit.upper(), fontsize=10)
        ax.grid(alpha=0.3)
    fig.legend(*axes[0][0].get_legend_handles_labels(), loc="center left",
               bbox_to_anchor=(1.0, 0.5), fontsize=8, title="model", title_fontsize=8,
               frameon=False)
    fig.tight_layout()
    return _save(fig, path)


def arviz_plot(path, fn, *args, **kwargs):
    """Run an arviz_plots function and save its figure."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        fn(*args, backend="matplotlib", **kwargs)
    fig = plt.gcf()
    # a layout engine keeps each panel's title clear of the x labels of the row above
    fig.set_layout_engine("constrained")
    return _save(fig, path, dpi=80)


def forest(path, rows, ci="89% ETI"):
    """Each scalar's posterior interval and EM estimates, standardised by the posterior sd.

    Parameters
    ----------
    path : Path
    rows : list of dict
        :func:`reports.compare.compare` rows.
    ci : str
        Name of the interval in the rows (:func:`reports.compare.ci_label`).

    Returns
    -------
    Path
    """
    n = len(rows)
    fig, ax = plt.subplots(figsize=(6.5, 0.28 * n + 1.2))
    y = np.arange(n)[::-1]
    for yi, r in zip(y, rows):
        sd = r["sd"] if r["sd"] > 0 else 1.0
        lo, hi = (r["lower"] - r["mean"]) / sd, (r["upper"] - r["mean"]) / sd
        ax.plot([lo, hi], [yi, yi], color="C0", lw=2)
        ax.plot(0, yi, "o", color="C0", ms=4)
        ax.plot((r["em"] - r["mean"]) / sd, yi, "D", color=COLORS["EM MAP"], ms=5)
        if "em_mle" in r:
            ax.plot((r["em_mle"] - r["mean"]) / sd, yi, "x", color=COLORS["EM MLE"], ms=6)
    ax.set_yticks(y, [r["parameter"] for r in rows], fontsize=7)
    ax.axvline(0, color="0.8", lw=1)
    ax.set_xlabel("(value - posterior mean) / posterior sd")
    ax.plot([], [], color="C0", lw=2, label=f"posterior {ci}")
    ax.plot([], [], "D", color=COLORS["EM MAP"], label="EM MAP")
    ax.plot([], [], "x", color=COLORS["EM MLE"], label="EM MLE")
    ax.legend(fontsize=7, loc="lower right")
    return _save(fig, path)


def vb_intervals(path, rows, ci="89% ETI"):
    """Each scalar's posterior interval beside variational Bayes's, in posterior sd units.

    Parameters
    ----------
    path : Path
    rows : list of dict
        :func:`reports.compare.compare_vb` rows.
    ci : str
        Name of the intervals (:func:`reports.compare.ci_label`).

    Returns
    -------
    Path
    """
    n = len(rows)
    fig, ax = plt.subplots(figsize=(6.5, 0.32 * n + 1.2))
    y = np.arange(n)[::-1]
    for yi, r in zip(y, rows):
        sd = r["sd"] if r["sd"] > 0 else 1.0
        ax.plot([(r["lower"] - r["mean"]) / sd, (r["upper"] - r["mean"]) / sd], [yi + 0.12] * 2,
                color="C0", lw=2)
        ax.plot(0, yi + 0.12, "o", color="C0", ms=4)
        ax.plot([(r["vb_lower"] - r["mean"]) / sd, (r["vb_upper"] - r["mean"]) / sd],
                [yi - 0.12] * 2, color=COLORS["VB"], lw=2)
        ax.plot((r["vb"] - r["mean"]) / sd, yi - 0.12, "s", color=COLORS["VB"], ms=4)
        ax.plot((r["em"] - r["mean"]) / sd, yi, "D", color=COLORS["EM MAP"], ms=4)
    ax.set_yticks(y, [f"{r['parameter']} ({r['vb_coverage']:.0%})" for r in rows], fontsize=7)
    ax.axvline(0, color="0.8", lw=1)
    ax.set_xlabel("(value - posterior mean) / posterior sd")
    ax.plot([], [], color="C0", lw=2, label=f"posterior {ci}")
    ax.plot([], [], color=COLORS["VB"], lw=2, label=f"VB {ci} (posterior mass it holds)")
    ax.plot([], [], "D", color=COLORS["EM MAP"], label="EM MAP")
    ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.5 / (0.32 * n + 1.2) - 0.08),
              ncols=3, frameon=False)
    return _save(fig, path)


def responsibilities(path, gamma_em, gamma_post):
    """EM responsibilities against the posterior mean of p(z_n = k | x_n)."""
    fig, ax = plt.subplots(figsize=(4.5, 4.5))
    for k in range(gamma_em.shape[1]):
        ax.scatter(gamma_em[:, k], gamma_post[:, k], s=8, alpha=0.6, label=f"component {k}")
    ax.plot([0, 1], [0, 1], color="0.5", lw=1)
    ax.set_xlabel("EM gamma(z_nk)")
    ax.set_ylabel("posterior mean p(z_n = k | x_n)")
    ax.legend(fontsize=8)
    return _save(fig, path)


def ppc_marginals(path, X, names, post_dt, n_lines=50):
    """Observed marginal histograms against densities of posterior predictive replicates."""
    rep = post_dt["posterior_predictive"]["x"].values.reshape(-1, *X.shape)
    rep = rep[np.linspace(0, len(rep) - 1, min(n_lines, len(rep))).astype(int)]
    d = min(X.shape[1], MAX_PAIRS)
    fig, axes = plt.subplots(1, d, figsize=(3.3 * d, 3), squeeze=False)
    for j, ax in enumerate(axes[0]):
        x = X[:, j][~np.isnan(X[:, j])]          # a column's observed cells
        lo, hi = np.quantile(np.concatenate([x, rep[:, :, j].ravel()]), [0.001, 0.999])
        bins = np.linspace(lo, hi, 40)
        for r in rep[:n_lines]:
            h, e = np.histogram(r[:, j], bins=bins, density=True)
            ax.plot(0.5 * (e[1:] + e[:-1]), h, color="C0", alpha=0.1, lw=1)
        h, e = np.histogram(x, bins=bins, density=True)
        ax.plot(0.5 * (e[1:] + e[:-1]), h, color="k", lw=2)
        ax.set_title(names[j], fontsize=9)
        ax.set_yticks([])
    fig.suptitle("Observed (black) vs posterior predictive replicates (blue)", fontsize=9)
    fig.tight_layout()
    return _save(fig, path)


def loo_plot(path, table):
    """elpd_loo with its standard error per sampled K."""
    fig, ax = plt.subplots(figsize=(5, 3))
    Ks = [r["K"] for r in table]
    ax.errorbar(Ks, [r["elpd_loo"] for r in table], yerr=[r["se"] for r in table], fmt="o-")
    ax.set_xlabel("K")
    ax.set_ylabel("elpd_loo (higher is better)")
    ax.set_xticks(Ks)
    return _save(fig, path)


# ---------------------------------------------------------------------------------------------
# mclust's plots (classification, uncertainty, density) as pairs plots of any dimension
# ---------------------------------------------------------------------------------------------
def projection(X, names, max_dims=MAX_PAIRS):
    """The coordinates a pairs plot shows: the features up to ``max_dims``, else the first PCs.

    Parameters
    ----------
    X : ndarray of shape (N, d)
    names : list of str
    max_dims : int

    Returns
    -------
    W : ndarray of shape (d, p)
        Columns of the shown coordinates (the identity, or principal axes).
    centre : ndarray of shape (d,)
    labels : list of str
    note : str
        Empty, or a sentence saying the plot shows principal components.
    """
    d = X.shape[1]
    if d <= max_dims:
        return np.eye(d), np.zeros(d), list(names), ""
    complete = X[~np.isnan(X).any(axis=1)]  # rows with a missing cell have no projection
    X = complete if len(complete) > d else np.nan_to_num(X - np.nanmean(X, axis=0))
    centre, sd = X.mean(axis=0), X.std(axis=0)
    sd = np.where(sd > 0, sd, 1.0)
    _, s, Vt = np.linalg.svd((X - centre) / sd, full_matrices=False)
    share = s**2 / np.sum(s**2)
    labels = [f"PC{j + 1} ({share[j]:.0%})" for j in range(max_dims)]
    note = (f"{d} features are more than {max_dims}, so these panels show the data and the "
            f"components projected on the first {max_dims} principal components of the "
            f"standardised features ({share[:max_dims].sum():.0%} of their variance).")
    return Vt[:max_dims].T / sd[:, None], centre, labels, note


def _project(params, W, centre):
    full = params.to_full()
    return full.pi, (full.mu - centre) @ W, np.einsum("di,kde,ej->kij", W, full.Sigma, W)


def _mixture_density(grid, pi, mu, Sigma):
    """Density of a mixture at ``grid`` (M, q) for q-dimensional marginals."""
    from scipy.stats import multivariate_normal

    return sum(p * multivariate_normal(m, S, allow_singular=True).pdf(grid)
               for p, m, S in zip(pi, mu, Sigma))


def mclust_plot(path, kind, X, names, params, gamma):
    """Draw mclust's ``classification``, ``uncertainty`` or ``density`` plot, as a pairs plot.

    Each lower panel shows one pair of coordinates (features, or principal components past
    :data:`MAX_PAIRS` features); the diagonal shows each coordinate alone, named in its panel. A
    row with missing cells appears in the panels whose coordinates it has.

    Parameters
    ----------
    path : Path
    kind : {"classification", "uncertainty", "density"}
    X : ndarray of shape (N, d)
    names : list of str
    params : GMMParams
        The mixture drawn (ellipses and density).
    gamma : ndarray of shape (N, K)
        Responsibilities: the class is their argmax, the uncertainty ``1 - max_k gamma``.

    Returns
    -------
    path : Path
    note : str
        Empty, or what the projection did.
    """
    W, centre, labels, note = projection(X, names)
    Y = (X - centre) @ W
    pi, mu, Sigma = _project(params, W, centre)
    z, u = gamma.argmax(axis=1), 1.0 - gamma.max(axis=1)
    groups = _uncertainty_groups(u)
    p = Y.shape[1]
    size = min(2.0 * max(p, 3), 14)
    fig = plt.figure(figsize=(size, size) if p > 1 else (8, 4))
    # the lower triangle only, tick labels on the outer row and column: a 64-panel grid with
    # every label and a tight layout took 3 s to draw
    columns = {}
    for i in range(p):
        for j in range(i + 1):
            ax = fig.add_subplot(p, p, i * p + j + 1, sharex=columns.get(j))
            columns.setdefault(j, ax)
            if i == j:
                _diagonal(ax, kind, Y[:, i], z, groups, pi, mu[:, i], Sigma[:, i, i])
                ax.text(0.03, 0.95, labels[i], transform=ax.transAxes, fontsize=7, va="top",
                        bbox={"facecolor": "white", "alpha": 0.7, "lw": 0, "pad": 1})
            else:
                _panel(ax, kind, Y[:, [j, i]], z, groups, pi, mu[:, [j, i]],
                       Sigma[:, [j, i]][:, :, [j, i]])
            ax.tick_params(labelsize=6, labelbottom=i == p - 1,
                           labelleft=j == 0 and i > 0 or p == 1)
            if i == p - 1:
                ax.set_xlabel(labels[j], fontsize=8)
            if j == 0 and i > 0:
                ax.set_ylabel(labels[i], fontsize=8)
    if p == 1:
        ax.set_ylabel({"classification": "count", "uncertainty": "count",
                       "density": "density"}[kind], fontsize=8)
    title = {"classification": "Classification: most likely component, with 2-sigma ellipses",
             "uncertainty": "Uncertainty 1 - max gamma: every observation, larger and darker "
                            "when less certain",
             "density": "Mixture density (contours) over the data"}[kind]
    fig.suptitle(title, fontsize=10)
    right = 0.98 if p > 1 else 0.72
    fig.subplots_adjust(left=0.08 if p > 1 else 0.12, bottom=0.08 if p > 1 else 0.14,
                        right=right, top=0.94 if p > 1 else 0.88, wspace=0.08, hspace=0.08)
    # in the empty upper triangle, or beside a single panel
    legend = {"loc": "upper right" if p > 1 else "upper left", "fontsize": 8,
              "title_fontsize": 8, "frameon": False,
              "bbox_to_anchor": (0.98, 0.9) if p > 1 else (0.74, 0.88)}
    if kind == "classification":
        component_legend(fig, len(pi), title="component (colour)", **legend)
    elif kind == "uncertainty":
        fig.legend(handles=_uncertainty_handles(groups), title="1 - max gamma", **legend)
    return _save(fig, path, tight=False), note


def _uncertainty_groups(u):
    """The three groups of mclust's uncertainty plot: below the 75 % quantile, to the 95 %, above.

    Returns
    -------
    dict
        ``index`` (N,) of the group (0, 1, 2), ``breaks`` the two quantiles, and the groups'
        ``size``, ``color`` and ``label``.
    """
    breaks = np.quantile(u, [0.75, 0.95])
    index = np.digitize(u, breaks, right=True)
    return {"index": index, "breaks": breaks, "size": (4.0, 14.0, 36.0),
            "color": ("0.72", "0.4", "0.0"),
            "label": (f"<= {breaks[0]:.2g} (75 % of points)",
                      f"{breaks[0]:.2g} to {breaks[1]:.2g} (next 20 %)",
                      f"> {breaks[1]:.2g} (top 5 %)")}


def _uncertainty_handles(groups):
    from matplotlib.lines import Line2D

    return [Line2D([], [], ls="", marker="o", color=c, ms=np.sqrt(s), label=lab)
            for s, c, lab in zip(groups["size"], groups["color"], groups["label"])]


def _panel(ax, kind, Y2, z, groups, pi, mu, Sigma):
    seen = ~np.isnan(Y2).any(axis=1)
    Y2, z, groups = Y2[seen], z[seen], {**groups, "index": groups["index"][seen]}
    if kind == "classification":
        for k in range(len(pi)):
            ax.scatter(*Y2[z == k].T, s=6, color=component_color(k), alpha=0.7)
            _ellipse(ax, mu[k], Sigma[k], 2, color=component_color(k), lw=1)
    elif kind == "uncertainty":
        for g in range(3):          # the least certain last, on top
            sel = groups["index"] == g
            ax.scatter(*Y2[sel].T, s=groups["size"][g], color=groups["color"][g],
                       edgecolors="none")
    else:
        lo, hi = Y2.min(axis=0), Y2.max(axis=0)
        pad = 0.1 * (hi - lo + 1e-12)
        g0, g1 = np.meshgrid(np.linspace(lo[0] - pad[0], hi[0] + pad[0], 60),
                             np.linspace(lo[1] - pad[1], hi[1] + pad[1], 60))
        dens = _mixture_density(np.column_stack([g0.ravel(), g1.ravel()]), pi, mu, Sigma)
        ax.scatter(*Y2.T, s=2, color="0.75")
        ax.contour(g0, g1, dens.reshape(g0.shape), levels=8, linewidths=0.8, cmap="viridis")


def _diagonal(ax, kind, y, z, groups, pi, mu, var):
    from scipy.stats import norm

    seen = ~np.isnan(y)
    y, z, groups = y[seen], z[seen], {**groups, "index": groups["index"][seen]}
    bins = np.histogram_bin_edges(y, bins=30)
    if kind == "classification":            # each component's histogram, stacked
        ax.hist([y[z == k] for k in range(len(pi))], bins=bins, stacked=True,
                color=[component_color(k) for k in range(len(pi))])
    elif kind == "uncertainty":             # the coordinate's histogram, the top 5 % as a rug
        ax.hist(y, bins=bins, color="0.8")
        top = y[groups["index"] == 2]
        ax.plot(top, np.zeros_like(top), "|", color="k", ms=8)
    else:
        ax.hist(y, bins=bins, density=True, color="0.8")
        grid = np.linspace(bins[0], bins[-1], 200)
        ax.plot(grid, sum(p * norm.pdf(grid, m, s) for p, m, s in zip(pi, mu, np.sqrt(var))),
                color="C0")
    ax.set_yticks([])


# ---------------------------------------------------------------------------------------------
# The posterior's modes and allocations
# ---------------------------------------------------------------------------------------------
def modes_trace(path, mode, shares):
    """Each draw's mode (the modes table's row), chain by chain, against the draw.

    Parameters
    ----------
    path : Path
    mode : ndarray of int, shape (chain, draw)
        Row numbers 1, 2, ... of the modes table.
    shares : sequence of float
        Each row's share of the draws, for the legend.

    Returns
    -------
    Path
    """
    from matplotlib.colors import BoundaryNorm, ListedColormap
    from matplotlib.patches import Patch

    C, D = mode.shape
    M = len(shares)
    colors = [f"C{(m - 1) % 10}" for m in range(1, M + 1)]
    fig, ax = plt.subplots(figsize=(6.5, 0.45 * C + 1.4))
    ax.imshow(mode, aspect="auto", interpolation="nearest", cmap=ListedColormap(colors),
              norm=BoundaryNorm(np.arange(0.5, M + 1), M), extent=(-0.5, D - 0.5, C - 0.5, -0.5))
    ax.set_yticks(range(C), [f"chain {c}" for c in range(C)], fontsize=8)
    ax.set_xlabel("draw")
    shown = [m for m in range(M) if shares[m] > 0][:10]
    ax.legend([Patch(color=colors[m]) for m in shown],
              [f"mode {m + 1} ({shares[m]:.1%})" for m in shown], fontsize=7,
              loc="upper center", bbox_to_anchor=(0.5, -0.35 if C < 3 else -0.2),
              ncols=min(len(shown), 5), frameon=False)
    ax.set_title("The mode each draw lies nearest, chain by chain", fontsize=10)
    return _save(fig, path)


def allocation_order(gamma):
    """Observations ordered by their most probable component, then most certain first.

    Parameters
    ----------
    gamma : ndarray of shape (N, K)

    Returns
    -------
    ndarray of int, shape (N,)
    """
    return np.lexsort((-gamma.max(axis=1), gamma.argmax(axis=1)))


def allocation(path, gamma, p_same=None):
    """Allocation probabilities p(z_n = k | data), and the co-clustering matrix where given.

    Both in one order (:func:`allocation_order`): blocks of observations by their most probable
    component.

    Parameters
    ----------
    path : Path
    gamma : ndarray of shape (N, K)
        The posterior's allocation probabilities, on its labels.
    p_same : ndarray of shape (N, N) or None
        ``p(z_n = z_m | data)``.

    Returns
    -------
    Path
    """
    order = allocation_order(gamma)
    N, K = gamma.shape
    z = gamma.argmax(axis=1)[order]
    ncols = 1 if p_same is None else 2
    fig, axes = plt.subplots(1, ncols, figsize=(3.2 + 0.35 * K + (5.2 if ncols == 2 else 0), 5),
                             squeeze=False, width_ratios=[1, 3] if ncols == 2 else [1])
    ax = axes[0, 0]
    im = ax.imshow(gamma[order], aspect="auto", interpolation="nearest", cmap="Blues",
                   vmin=0, vmax=1)
    ax.set_xticks(range(K), [str(k) for k in range(K)])
    ax.set_xlabel("component k")
    ax.set_ylabel(f"observation ({N}), by most probable component")
    ax.set_title("p(z_n = k | data)", fontsize=9)
    bounds = np.flatnonzero(np.diff(z)) + 0.5
    for b in bounds:
        ax.axhline(b, color="k", lw=0.6)
    if p_same is not None:
        ax2 = axes[0, 1]
        ax2.imshow(np.asarray(p_same)[np.ix_(order, order)], interpolation="nearest",
                   cmap="Blues", vmin=0, vmax=1)
        for b in bounds:
            ax2.axhline(b, color="k", lw=0.6)
            ax2.axvline(b, color="k", lw=0.6)
        ax2.set_title("co-clustering p(z_n = z_m | data), rows as on the left", fontsize=9)
        ax2.set_xlabel("observation m, in the same order")
        ax2.tick_params(labelleft=False)
    fig.colorbar(im, ax=axes.ravel().tolist(), shrink=0.8, label="probability")
    return _save(fig, path)
