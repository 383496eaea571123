"""Figures of the report; each function writes one PNG and returns its path."""

from __future__ import annotations

import warnings

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.patches import Ellipse  # noqa: E402

from models.results import point_to_params  # noqa: E402

COLORS = {"EM MLE": "C3", "EM MAP": "C2", "posterior mean": "k"}
MAX_PAIRS = 8           # pairs plots, marginal plots: past this many features, principal components


def _save(fig, path, tight=True):
    fig.savefig(path, dpi=90, bbox_inches="tight" if tight else None)
    plt.close(fig)
    return path


def _ellipse(ax, mean, cov, n_sigma, **kw):
    vals, vecs = np.linalg.eigh(cov)
    angle = np.degrees(np.arctan2(vecs[1, -1], vecs[0, -1]))
    w, h = 2 * n_sigma * np.sqrt(vals[::-1])
    ax.add_patch(Ellipse(mean, w, h, angle=angle, fill=False, **kw))


def ellipses(path, X, names, estimates, post_dt=None, n_draws=50, seed=0):
    """Data with 1- and 2-sigma ellipses of each estimate, and a spread of posterior draws.

    Parameters
    ----------
    path : Path
    X : ndarray of shape (N, d)
        Only the first two columns are drawn.
    names : list of str
    estimates : dict of str to GMMParams
    post_dt : DataTree or None
    n_draws : int
    seed : int

    Returns
    -------
    Path
    """
    fig, ax = plt.subplots(figsize=(6.5, 5))
    ax.scatter(X[:, 0], X[:, 1], s=8, color="0.6", label="data")
    if post_dt is not None:
        post = post_dt["posterior"]
        ct = post_dt.attrs["covariance_type"]
        C, D = post["pi"].shape[:2]
        rng = np.random.default_rng(seed)
        for i in rng.choice(C * D, size=min(n_draws, C * D), replace=False):
            p = point_to_params({v: post[v].values[i // D, i % D] for v in ("pi", "mu", "Sigma")},
                                ct).to_full()
            for k in range(p.K):
                _ellipse(ax, p.mu[k, :2], p.Sigma[k, :2, :2], 2, color="C0", alpha=0.08, lw=1)
    for label, p in estimates.items():
        full = p.to_full()
        for k in range(full.K):
            for n_sigma, ls in ((1, "-"), (2, "--")):
                _ellipse(ax, full.mu[k, :2], full.Sigma[k, :2, :2], n_sigma,
                         color=COLORS.get(label, "C1"), ls=ls, lw=1.5,
                         label=label if (k == 0 and n_sigma == 1) else None)
    if post_dt is not None:
        ax.plot([], [], color="C0", alpha=0.4, label=f"posterior draws ({n_draws}, 2-sigma)")
    ax.set_xlabel(names[0])
    ax.set_ylabel(names[1] if len(names) > 1 else "")
    ax.legend(fontsize=8, loc="best")
    ax.set_title("Components: 1-sigma (solid) and 2-sigma (dashed) ellipses")
    return _save(fig, path)


def selection(path, rows, criteria=("bic", "icl")):
    """BIC (solid) and ICL (dashed) over K for each covariance type (lower is better)."""
    fig, ax = plt.subplots(figsize=(6.5, 4))
    types = list(dict.fromkeys(r["covariance_type"] for r in rows))
    for i, ct in enumerate(types):
        rs = [r for r in rows if r["covariance_type"] == ct]
        K = [r["K"] for r in rs]
        for crit, ls in zip(criteria, ("-o", "--x")):
            ax.plot(K, [r[crit] for r in rs], ls, color=f"C{i}",
                    label=f"{ct} {crit.upper()}", ms=4)
    ax.set_xlabel("K (components)")
    ax.set_xticks(sorted({r["K"] for r in rows}))
    ax.set_ylabel("criterion (lower is better)")
    ax.legend(fontsize=7, ncols=2)
    ax.set_title("Model selection grid")
    return _save(fig, path)


def arviz_plot(path, fn, *args, **kwargs):
    """Run an arviz_plots function and save its figure."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        pc = fn(*args, backend="matplotlib", **kwargs)
    pc.savefig(path, dpi=80, bbox_inches="tight")
    plt.close("all")
    return path


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
        lo, hi = np.quantile(np.concatenate([X[:, j], rep[:, :, j].ravel()]), [0.001, 0.999])
        bins = np.linspace(lo, hi, 40)
        for r in rep[:n_lines]:
            h, e = np.histogram(r[:, j], bins=bins, density=True)
            ax.plot(0.5 * (e[1:] + e[:-1]), h, color="C0", alpha=0.1, lw=1)
        h, e = np.histogram(X[:, j], bins=bins, density=True)
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
    :data:`MAX_PAIRS` features); the diagonal shows each coordinate alone.

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
    p = Y.shape[1]
    size = min(2.0 * max(p, 3), 14)
    fig = plt.figure(figsize=(size, size) if p > 1 else (6.5, 4))
    # the lower triangle only, tick labels on the outer row and column: a 64-panel grid with
    # every label and a tight layout took 3 s to draw
    columns = {}
    for i in range(p):
        for j in range(i + 1):
            ax = fig.add_subplot(p, p, i * p + j + 1, sharex=columns.get(j))
            columns.setdefault(j, ax)
            if i == j:
                _diagonal(ax, kind, Y[:, i], z, u, pi, mu[:, i], Sigma[:, i, i])
                if p > 1:
                    ax.set_yticks([])
            else:
                _panel(ax, kind, Y[:, [j, i]], z, u, pi, mu[:, [j, i]],
                       Sigma[:, [j, i]][:, :, [j, i]])
            ax.tick_params(labelsize=6, labelbottom=i == p - 1,
                           labelleft=j == 0 and i > 0 or p == 1)
            if i == p - 1:
                ax.set_xlabel(labels[j], fontsize=8)
            if j == 0 and i > 0:
                ax.set_ylabel(labels[i], fontsize=8)
    if p == 1:
        ax.set_ylabel({"classification": "count", "uncertainty": "1 - max gamma",
                       "density": "density"}[kind], fontsize=8)
    title = {"classification": "Classification: most likely component, with 2-sigma ellipses",
             "uncertainty": "Uncertainty 1 - max gamma: larger, darker points are less certain",
             "density": "Mixture density (contours) over the data"}[kind]
    fig.suptitle(title, fontsize=10)
    fig.subplots_adjust(left=0.08 if p > 1 else 0.12, bottom=0.08 if p > 1 else 0.14, right=0.98,
                        top=0.94 if p > 1 else 0.88, wspace=0.08, hspace=0.08)
    return _save(fig, path, tight=False), note


def _panel(ax, kind, Y2, z, u, pi, mu, Sigma):
    if kind == "classification":
        for k in range(len(pi)):
            ax.scatter(*Y2[z == k].T, s=6, color=f"C{k % 10}", alpha=0.7)
            _ellipse(ax, mu[k], Sigma[k], 2, color=f"C{k % 10}", lw=1)
    elif kind == "uncertainty":
        order = np.argsort(u)
        scale = max(u.max(), 1e-12)
        ax.scatter(*Y2[order].T, s=3 + 40 * u[order] / scale, c=u[order], cmap="Greys",
                   vmin=0, vmax=scale, edgecolors="none")
    else:
        lo, hi = Y2.min(axis=0), Y2.max(axis=0)
        pad = 0.1 * (hi - lo + 1e-12)
        g0, g1 = np.meshgrid(np.linspace(lo[0] - pad[0], hi[0] + pad[0], 60),
                             np.linspace(lo[1] - pad[1], hi[1] + pad[1], 60))
        dens = _mixture_density(np.column_stack([g0.ravel(), g1.ravel()]), pi, mu, Sigma)
        ax.scatter(*Y2.T, s=2, color="0.75")
        ax.contour(g0, g1, dens.reshape(g0.shape), levels=8, linewidths=0.8, cmap="viridis")


def _diagonal(ax, kind, y, z, u, pi, mu, var):
    from scipy.stats import norm

    bins = np.histogram_bin_edges(y, bins=30)
    if kind == "classification":
        for k in range(len(pi)):
            ax.hist(y[z == k], bins=bins, color=f"C{k % 10}", alpha=0.5)
    elif kind == "uncertainty":
        ax.scatter(y, u, s=4, color="0.3")
        ax.set_ylim(0, max(u.max(), 1e-12) * 1.05)
    else:
        ax.hist(y, bins=bins, density=True, color="0.8")
        grid = np.linspace(bins[0], bins[-1], 200)
        ax.plot(grid, sum(p * norm.pdf(grid, m, s) for p, m, s in zip(pi, mu, np.sqrt(var))),
                color="C0")
