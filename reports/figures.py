"""Figures of the report; each function writes one PNG and returns its path."""

from __future__ import annotations

import warnings

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.patches import Ellipse  # noqa: E402

from models.pymc import point_to_params  # noqa: E402

COLORS = {"EM MLE": "C3", "EM MAP": "C2", "posterior mean": "k"}


def _save(fig, path):
    fig.savefig(path, dpi=90, bbox_inches="tight")
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


def forest(path, rows):
    """Each scalar's posterior interval and EM estimates, standardised by the posterior sd.

    Parameters
    ----------
    path : Path
    rows : list of dict
        :func:`reports.compare.compare` rows.

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
    ax.plot([], [], color="C0", lw=2, label="posterior 94% interval")
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
    d = X.shape[1]
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
