r"""The posterior's modes: where EM's restarts end, and how many of the draws lie near each.

A mixture's posterior has ``K!`` copies of every mode, one per labelling, and often more than one
mode besides: different ways of cutting the data into K components. EM from one start climbs to
one of them. This module, above both EM and the posterior, joins the two:

1. :func:`em_modes`: EM (MAP under the prior) from at least 50 restarts, and the distinct local
   modes they end at: two restarts end at the same mode when their log posteriors (which do not
   depend on the labels) agree within ``1e-3``.
2. :func:`configurations`: local modes that differ only in where a light component sits are
   one configuration: a mode joins the first mode of higher log posterior within
   :data:`CONFIGURATION_TOL` of it in :func:`distance`.
3. :func:`assign`: every draw goes to its nearest local mode in :func:`distance`, which does
   not depend on the labels; a configuration's share of the posterior is its share of draws.

The distance between two mixtures ``a`` and ``b`` is, over the matchings ``sigma`` of their
components (Hungarian, ``scipy.optimize.linear_sum_assignment``),

.. math:: D(a, b) = \min_\sigma \sum_k \Big[(\pi^a_k - \pi^b_{\sigma(k)})^2
    + \tfrac{1}{2}(\pi^a_k + \pi^b_{\sigma(k)})\,
      \tfrac{1}{d}\big\lVert (\mu^a_k - \mu^b_{\sigma(k)}) / s \big\rVert^2\Big]

with ``s`` the data's column standard deviations: the weights, and the standardised means
weighted by the weight of the components they belong to, so that a light component that
wanders moves a draw little.
"""

from __future__ import annotations

import itertools
import warnings
from dataclasses import dataclass, field

import numpy as np
import xarray as xr
from scipy.optimize import linear_sum_assignment
from scipy.special import logsumexp

import em

#: local modes whose log posteriors differ by at most this are one mode
LOG_POSTERIOR_TOL = 1e-3
#: a local mode within this :func:`distance` of a higher one belongs to its configuration
CONFIGURATION_TOL = 0.05
#: fewer restarts than this do not map the modes
MIN_RESTARTS = 50
#: above this K the matchings are found by the Hungarian algorithm, below by enumeration
_ENUMERATE_K = 4


@dataclass(frozen=True, eq=False)
class Mode:
    """One local mode of the posterior that EM reached.

    Attributes
    ----------
    params : GMMParams
        Its parameters, components ordered by weight, heaviest first.
    log_posterior : float
        ``sum_n log p(x_n | theta) + log p(theta)``.
    N_k : ndarray of shape (K,)
        Component sizes: ``sum_n gamma_nk`` at the mode, in the order of ``params``.
    restarts : int
        How many of EM's restarts ended here.
    """

    params: object
    log_posterior: float
    N_k: np.ndarray
    restarts: int = 1


@dataclass(eq=False)
class ModeMap:
    """EM's local modes, their configurations, and the draws' shares.

    Attributes
    ----------
    modes : list of Mode
        Distinct local modes, highest log posterior first.
    configuration : ndarray of int, shape (n_modes,)
        Each mode's configuration: the index of the mode that leads it (the highest of its
        configuration).
    n_restarts : int
        EM's restarts, failed ones included.
    failures : list of str
        Why each failed restart failed.
    draw_mode : ndarray of int, shape (chain, draw) or None
        Each draw's nearest local mode, once draws are assigned.
    em : dict of str to int
        Each EM estimate's nearest local mode, by name (``"EM MAP"``, ``"EM MLE"``).
    """

    modes: list
    configuration: np.ndarray
    n_restarts: int
    failures: list = field(default_factory=list)
    draw_mode: np.ndarray | None = None
    em: dict = field(default_factory=dict)

    @property
    def leaders(self):
        """The leading mode of each configuration, in the modes table's order.

        The largest share of draws first, then the highest log posterior.
        """
        shares = self.configuration_shares()
        return sorted(shares, key=lambda i: (-np.nan_to_num(shares[i], nan=0.0), i))

    def number(self, mode):
        """The modes table's row number (1, 2, ...) of a local mode's configuration."""
        return self.leaders.index(int(self.configuration[mode])) + 1

    def shares(self):
        """Each local mode's share of the draws, shape (n_modes,) (NaN before assigning)."""
        if self.draw_mode is None:
            return np.full(len(self.modes), np.nan)
        counts = np.bincount(self.draw_mode.ravel(), minlength=len(self.modes))
        return counts / self.draw_mode.size

    def configuration_shares(self):
        """Each configuration's share of the draws, by its leading mode."""
        shares = self.shares()
        return {int(i): float(shares[self.configuration == i].sum())
                for i in np.unique(self.configuration)}

    def draw_configuration(self):
        """Each draw's row number in the modes table, shape (chain, draw)."""
        numbers = np.array([self.number(j) for j in range(len(self.modes))])
        return numbers[self.draw_mode]

    def rows(self):
        """The modes table: one row per configuration, the largest share of draws first.

        Returns
        -------
        list of dict
            ``mode`` (1, 2, ...), ``pi`` and ``N_k`` of its highest local mode (as text,
            heaviest component first), ``log_posterior`` (that mode's), ``local_modes`` (EM's
            distinct local modes in it), ``restarts`` (EM's restarts that ended in it),
            ``share`` (of the draws) and ``em`` (the EM estimates nearest it).
        """
        shares = self.configuration_shares()
        rows = []
        for number, i in enumerate(self.leaders, start=1):
            m = self.modes[i]
            members = np.flatnonzero(self.configuration == i)
            rows.append({
                "mode": number,
                "pi": ", ".join(f"{v:.3f}" for v in m.params.pi),
                "N_k": ", ".join(f"{v:.1f}" for v in m.N_k),
                "log_posterior": m.log_posterior,
                "local_modes": len(members),
                "restarts": int(sum(self.modes[j].restarts for j in members)),
                "share": shares[i],
                "em": ", ".join(name for name, j in self.em.items()
                                if self.configuration[j] == i),
            })
        return rows

    def local_rows(self):
        """Every local mode EM reached (``modes.csv``).

        Returns
        -------
        list of dict
            ``local_mode`` (0, 1, ... by log posterior), ``mode`` (its configuration's row in
            :meth:`rows`), ``log_posterior``, ``pi[k]`` and ``N_k[k]`` (heaviest component
            first), ``restarts``, (once draws are assigned) ``share`` of the draws, and ``em``
            (the EM estimates nearest it).
        """
        shares = self.shares()
        rows = []
        for j, m in enumerate(self.modes):
            row = {"local_mode": j, "mode": self.number(j), "log_posterior": m.log_posterior}
            row.update({f"pi[{k}]": float(v) for k, v in enumerate(m.params.pi)})
            row.update({f"N_k[{k}]": float(v) for k, v in enumerate(m.N_k)})
            row["restarts"] = m.restarts
            if self.draw_mode is not None:
                row["share"] = float(shares[j])
            row["em"] = ", ".join(name for name, i in self.em.items() if i == j)
            rows.append(row)
        return rows

    def em_share(self, name="EM MAP"):
        """The share of the draws in the row of an EM estimate placed by :func:`assign`."""
        return self.configuration_shares()[int(self.configuration[self.em[name]])]

    def summary(self, name="EM MAP"):
        """One plain line on where an EM estimate sits among the draws (:func:`summary_line`)."""
        return summary_line(self.rows(), name, self.local_rows())


def summary_line(rows, name="EM MAP", local_rows=None):
    """One plain line on where an EM estimate sits among the draws.

    "EM's MAP is a mode of the posterior" with the share of the draws near it; "the posterior
    mode" only where that share is the largest; a plain warning when it is below half.

    Parameters
    ----------
    rows : list of dict
        The modes table (:meth:`ModeMap.rows`, or ``modes.csv`` read back).
    name : str
        The estimate, as the table's ``em`` column names it.
    local_rows : list of dict or None
        Every local mode (:meth:`ModeMap.local_rows`, or ``local_modes.csv``): where the
        estimate's own local mode is not its row's highest, the line gives its log posterior
        and weights.

    Returns
    -------
    str
        Empty when the table does not place the estimate.
    """
    mine = [r for r in rows if name in str(r["em"]).split(", ")]
    if not mine:
        return ""
    share, number = float(mine[0]["share"]), mine[0]["mode"]
    largest = share >= max(float(r["share"]) for r in rows)
    own = [r for r in local_rows or () if name in str(r.get("em", "")).split(", ")]
    if own and float(own[0]["log_posterior"]) != float(mine[0]["log_posterior"]):
        pis = [float(v) for k, v in own[0].items() if k.startswith("pi[")]
        number = (f"{number} of {len(rows)}, at a lower local mode of that row: log posterior "
                  f"{float(own[0]['log_posterior']):.2f}, weights "
                  f"{', '.join(f'{v:.3f}' for v in pis)}")
    else:
        number = f"{number} of {len(rows)}"
    if name != "EM MAP":   # the MLE is no mode of the posterior: say where it lies
        what = {"EM MLE": "EM's MLE"}.get(name, name)
        return f"{what} lies nearest mode {number} ({share:.1%} of the draws)."
    if len(rows) == 1:
        return (f"EM's MAP is at the one mode of the posterior that EM reaches, with {share:.1%} "
                "of the draws near it: the posterior mode.")
    line = (f"EM's MAP is a mode of the posterior with {share:.1%} of the draws near it (mode "
            f"{number})")
    if largest:
        return line + ": the largest share, so it is the posterior mode."
    if share < 0.5:
        return (line + ". Less than half of the draws lie near EM's MAP: most of the posterior "
                "is elsewhere (see the modes table).")
    return line + "; another mode holds more of the draws."


def display_rows(rows):
    """The modes table for reading: the log posterior to 0.01, the share in percent."""
    return [{**r, "log_posterior": f"{float(r['log_posterior']):.2f}",
             "share": f"{100 * float(r['share']):.1f}%"} for r in rows]


def standard_scale(X):
    """The data's column standard deviations (1 where a column is constant)."""
    s = np.asarray(X, dtype=np.float64).std(axis=0)
    return np.where(s > 0, s, 1.0)


def _pair_costs(pi, mu, ref_pi, ref_mu, scale):
    """Costs (S, K, K) of matching each draw's component j to the reference's component k."""
    d = mu.shape[-1]
    dmu = ((mu[:, :, None, :] - ref_mu[None, None]) / scale) ** 2            # (S, j, k, d)
    wbar = 0.5 * (pi[:, :, None] + ref_pi[None, None])
    return (pi[:, :, None] - ref_pi[None, None]) ** 2 + wbar * dmu.sum(-1) / d


def distance(pi, mu, mode, scale):
    """:math:`D` (the module docstring) from each of S mixtures to one mode.

    Parameters
    ----------
    pi : ndarray of shape (S, K)
    mu : ndarray of shape (S, K, d)
    mode : GMMParams
    scale : ndarray of shape (d,)
        The data's column standard deviations (:func:`standard_scale`).

    Returns
    -------
    ndarray of shape (S,)
    """
    cost = _pair_costs(np.asarray(pi, float), np.asarray(mu, float), mode.pi, mode.mu, scale)
    K = cost.shape[-1]
    if K <= _ENUMERATE_K:
        perms = np.array(list(itertools.permutations(range(K))))           # (P, K)
        cols = np.arange(K)
        return cost[:, perms, cols].sum(-1).min(-1)
    out = np.empty(len(cost))
    for s, c in enumerate(cost):
        rows, cols = linear_sum_assignment(c)
        out[s] = c[rows, cols].sum()
    return out


def _canonical(params):
    """Components ordered by weight, heaviest first (ties by the first mean)."""
    order = np.lexsort((params.mu[:, 0], -params.pi))
    return params.permute(order)


def _sizes(params, X):
    log_joint = params.log_joint(X)
    return np.exp(log_joint - logsumexp(log_joint, axis=1, keepdims=True)).sum(axis=0)


def em_modes(X, n_components, covariance_type="full", prior=None, n_init=MIN_RESTARTS,
             random_state=0):
    """EM's MAP from ``n_init + 2`` restarts, and the distinct local modes they end at.

    Parameters
    ----------
    X : ndarray of shape (N, d)
        Checked float64 data.
    n_components : int
    covariance_type : str
    prior : Prior
        The posterior's prior (EM's objective is then the log posterior).
    n_init : int, default 50
        k-means++ restarts, besides mclust's and Ward's agglomerations (:func:`em.fit`'s
        ``init="auto"``); at least :data:`MIN_RESTARTS`.
    random_state : int or numpy.random.SeedSequence

    Returns
    -------
    ModeMap
        Local modes (highest log posterior first) and their configurations; no draws yet.

    Raises
    ------
    ValueError
        ``n_init`` below :data:`MIN_RESTARTS`, or every restart failed (:func:`em.fit`).
    """
    if n_init < MIN_RESTARTS:
        raise ValueError(f"n_init={n_init} restarts cannot map the modes; use at least "
                         f"{MIN_RESTARTS}.")
    from sklearn.exceptions import ConvergenceWarning  # em.fit's warning class

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        res = em.fit(X, n_components, covariance_type, prior=prior, n_init=n_init,
                     random_state=random_state)
    ends = sorted(((lp, p) for lp, p in zip(res.restarts, res.restart_params) if p is not None),
                  key=lambda e: -e[0])
    modes = []
    for lp, p in ends:
        if modes and modes[-1].log_posterior - lp <= LOG_POSTERIOR_TOL:
            last = modes[-1]
            modes[-1] = Mode(last.params, last.log_posterior, last.N_k, last.restarts + 1)
            continue
        p = _canonical(p)
        modes.append(Mode(p, float(lp), _sizes(p, X)))
    return ModeMap(modes, configurations(modes, standard_scale(X)), len(res.restarts),
                   [e for e in res.restart_errors if e])


def configurations(modes, scale, tol=CONFIGURATION_TOL):
    """Group local modes: each joins the first higher mode within ``tol`` of it, else leads.

    Parameters
    ----------
    modes : list of Mode
        Highest log posterior first.
    scale : ndarray of shape (d,)
    tol : float

    Returns
    -------
    ndarray of int, shape (len(modes),)
        The index of each mode's leading mode.
    """
    lead = np.arange(len(modes))
    for j in range(1, len(modes)):
        m = modes[j].params
        for i in range(j):
            if lead[i] != i:
                continue
            if distance(m.pi[None], m.mu[None], modes[i].params, scale)[0] <= tol:
                lead[j] = i
                break
    return lead


def nearest(pi, mu, modes, scale):
    """The nearest local mode of each of S mixtures, and its distance.

    Parameters
    ----------
    pi : ndarray of shape (S, K)
    mu : ndarray of shape (S, K, d)
    modes : list of Mode
    scale : ndarray of shape (d,)

    Returns
    -------
    index : ndarray of int, shape (S,)
    dist : ndarray of shape (S,)
    """
    D = np.stack([distance(pi, mu, m.params, scale) for m in modes], axis=1)
    index = D.argmin(axis=1)
    return index, D[np.arange(len(D)), index]


def assign(mode_map, tree, X, estimates=None):
    """Put every draw of a posterior, and each EM estimate, at its nearest local mode.

    Parameters
    ----------
    mode_map : ModeMap
        From :func:`em_modes`; filled in place and returned.
    tree : xarray.DataTree
        With a ``posterior`` group (``pi``, ``mu`` by chain and draw).
    X : ndarray of shape (N, d)
        The data (for the scale of the means).
    estimates : dict of str to (pi, mu) or None
        EM estimates to place, by name (``"EM MAP"``, ``"EM MLE"``): their weights (K,) and
        means (K, d).

    Returns
    -------
    ModeMap
    """
    post = tree["posterior"]
    pi, mu = post["pi"].values, post["mu"].values
    C, D, K = pi.shape
    scale = standard_scale(X)
    index, _ = nearest(pi.reshape(C * D, K), mu.reshape(C * D, K, -1), mode_map.modes, scale)
    mode_map.draw_mode = index.reshape(C, D)
    for name, (pi_e, mu_e) in (estimates or {}).items():
        mode_map.em[name] = int(nearest(np.asarray(pi_e)[None], np.asarray(mu_e)[None],
                                        mode_map.modes, scale)[0][0])
    return mode_map


def modes_group(mode_map, tree):
    """The ``modes`` group of a posterior tree: each draw's local mode and configuration.

    Parameters
    ----------
    mode_map : ModeMap
        With draws assigned (:func:`assign`).
    tree : xarray.DataTree
        The posterior the draws come from (for its chain and draw coordinates).

    Returns
    -------
    xarray.Dataset
        ``local_mode`` (chain, draw): the ``local_mode`` row of ``local_modes.csv``;
        ``mode`` (chain, draw): the modes table's row (``modes.csv``). Its attrs
        ``em_map_mode`` and ``em_mle_mode`` give the rows of the EM estimates placed.
    """
    post = tree["posterior"]
    ds = xr.Dataset({"local_mode": (("chain", "draw"), mode_map.draw_mode),
                     "mode": (("chain", "draw"), mode_map.draw_configuration())},
                    coords={"chain": post["chain"].values, "draw": post["draw"].values})
    for name, j in mode_map.em.items():
        ds.attrs[name.lower().replace(" ", "_") + "_mode"] = mode_map.number(j)
    return ds
