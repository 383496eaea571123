r"""``em.BayesianGaussianMixture``: scikit-learn's variational Gaussian mixture, as a drop-in.

The model (Bishop 2006, section 10.2; scikit-learn's user guide, "Variational Bayesian Gaussian
Mixture"), for ``K`` components and ``d`` features. The weights have either a Dirichlet prior or
a Dirichlet process prior, truncated at ``K`` sticks (Blei & Jordan 2006):

.. math::
    \pi \sim \mathrm{Dir}(\alpha_0, \dots, \alpha_0) \quad\text{or}\quad
    \pi_k = v_k \prod_{j<k} (1 - v_j), \ v_k \sim \mathrm{Beta}(1, \alpha_0), \\
    \Lambda_k \sim \mathcal{W}(W_0, \nu_0), \qquad
    \mu_k \mid \Lambda_k \sim \mathcal{N}\bigl(m_0, (\beta_0 \Lambda_k)^{-1}\bigr), \\
    z_n \sim \mathrm{Cat}(\pi), \qquad x_n \mid z_n = k \sim \mathcal{N}(\mu_k, \Lambda_k^{-1})

with scikit-learn's names ``weight_concentration_prior`` (alpha_0), ``mean_precision_prior``
(beta_0), ``mean_prior`` (m_0), ``degrees_of_freedom_prior`` (nu_0) and ``covariance_prior``
(``W_0^{-1}``). The tied covariance shares one Wishart; diag and spherical use scikit-learn's
analogue of it (its digamma sum over ``d`` features, its ``nu_k = nu_0 + N_k``).

The factorised posterior ``q(z) q(pi) prod_k q(mu_k, Lambda_k)`` is found by coordinate ascent.
Its M-step reads the statistics ``N_k``, ``xbar_k`` and ``S_k`` of the responsibilities
``r_nk`` (Bishop 10.51-10.53, with scikit-learn's ``10 eps`` added to ``N_k`` and ``reg_covar``
to ``S_k``):

.. math::
    \beta_k = \beta_0 + N_k, \quad m_k = \frac{\beta_0 m_0 + N_k \bar x_k}{\beta_k}, \quad
    \nu_k = \nu_0 + N_k, \quad
    W_k^{-1} = W_0^{-1} + N_k S_k + \frac{\beta_0 N_k}{\beta_k} (\bar x_k - m_0)(\bar x_k - m_0)^T

(10.60-10.63), and ``alpha_k = alpha_0 + N_k`` (10.58), or for the process
``(a_k, b_k) = (1 + N_k, alpha_0 + sum_{j>k} N_j)``. As scikit-learn does, the fitted
``covariances_`` are ``W_k^{-1} / nu_k = E[Lambda_k]^{-1}``; tied has one ``nu = nu_0 + N / K``.
The E-step (10.46, 10.64-10.66) is

.. math::
    \log \rho_{nk} = E[\log \pi_k] + \tfrac12 E[\log |\Lambda_k|] - \tfrac d2 \log 2\pi
    - \tfrac12 \bigl(d / \beta_k + \nu_k (x_n - m_k)^T W_k (x_n - m_k)\bigr), \\
    E[\log |\Lambda_k|] = \sum_{i=1}^d \psi\bigl(\tfrac{\nu_k + 1 - i}2\bigr) + d \log 2
    + \log |W_k|, \qquad r_{nk} = \rho_{nk} / \textstyle\sum_j \rho_{nj}

with ``E[log pi_k] = psi(alpha_k) - psi(sum_j alpha_j)``, or for the process
``psi(a_k) - psi(a_k + b_k) + sum_{j<k} [psi(b_j) - psi(a_j + b_j)]``. This is the log joint of
:mod:`em.estep` at ``(pi, mu_k, Sigma_k) = (1/K, m_k, E[Lambda_k]^{-1})``, with a constant per
component added: so the E-step and the statistics are one :func:`em.fit.em_pass`, two matrix
products per row block over the features of :mod:`models.features`. The lower bound is
scikit-learn's (its ``_compute_lower_bound``: the evidence lower bound after the M-step, less
the terms that do not change),

.. math::
    \mathcal L = -\sum_{nk} r_{nk} \log r_{nk} - \sum_k \log B(W_k, \nu_k)
    - \log C(\alpha) - \tfrac d2 \sum_k \log \beta_k

with ``log B`` the Wishart normaliser without its ``pi`` term (Bishop B.79), ``log C`` the
Dirichlet's (Bishop, appendix B) or ``-sum_k log Beta(a_k, b_k)``. The entropy term needs no pass of its own:
``-sum r log r = sum_n log sum_k rho_nk - sum_nk r_nk log rho_nk``, and the second sum is linear
in the pass's statistics.

Initialisation, update order, convergence test (``|change of L| < tol``), restarts and
``warm_start`` are scikit-learn's, drawn from the same ``RandomState``: from one
``random_state`` the fit is scikit-learn's (``tests/em/test_bayesian.py``), and scikit-learn's
own test module runs against this class (``tests/em/test_sklearn_bayesian_suite.py``).
"""

from __future__ import annotations

import dataclasses
import time
import warnings
from numbers import Real

import numpy as np
from scipy.special import betaln, digamma, gammaln, logsumexp
from sklearn.base import BaseEstimator, DensityMixin
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils import check_array, check_random_state
from sklearn.utils.validation import check_is_fitted, validate_data

from em.estep import log_joint_rows
from em.estimator import INIT_PARAMS, initial_resp, precision_cholesky, sample_mixture
from em.fit import em_pass
from em.online import RunningStats, check_schedule
from models.families import SKLEARN_TYPES, family
from models.features import block_stats, default_chunk, log_joint_of
from models.params import GMMParams
from models.storage import DIAG, FULL, SPHERICAL, TIED
from models.validation import check_positive

_LOG_2PI = np.log(2 * np.pi)

_ILL_DEFINED = (
    "Fitting the mixture model failed because some components have ill-defined empirical "
    "covariance (for instance caused by singleton or collapsed samples). Try to decrease the "
    "number of components, increase reg_covar, or scale the input data."
)


# -- the weight prior: one entry per weight_concentration_prior_type ---------------------------
class DirichletDistribution:
    r"""Finite Dirichlet prior on the weights: ``q(pi) = Dir(alpha)``.

    .. math:: \alpha_k = \alpha_0 + N_k, \quad E[\log \pi_k] = \psi(\alpha_k)
        - \psi\bigl(\textstyle\sum_j \alpha_j\bigr), \quad
        \log C(\alpha) = \log\Gamma\bigl(\textstyle\sum_j \alpha_j\bigr) - \sum_k \log\Gamma(\alpha_k)
    """

    @staticmethod
    def update(alpha0, N_k):
        """Posterior concentration, shape (K,)."""
        return alpha0 + N_k

    @staticmethod
    def expected_log_weights(alpha):
        """``E[log pi_k]``, shape (K,)."""
        return digamma(alpha) - digamma(np.sum(alpha))

    @staticmethod
    def mean_weights(alpha):
        """``E[pi]``, scikit-learn's ``weights_``."""
        return alpha / np.sum(alpha)

    @staticmethod
    def log_norm(alpha):
        """``log C(alpha)``, the Dirichlet's log normaliser."""
        return gammaln(np.sum(alpha)) - np.sum(gammaln(alpha))


class DirichletProcess:
    r"""Stick-breaking prior truncated at K: ``q(v_k) = Beta(a_k, b_k)``.

    .. math:: a_k = 1 + N_k, \quad b_k = \alpha_0 + \sum_{j>k} N_j, \quad
        E[\log \pi_k] = \psi(a_k) - \psi(a_k + b_k) + \sum_{j<k} \bigl(\psi(b_j)
        - \psi(a_j + b_j)\bigr)
    """

    @staticmethod
    def update(alpha0, N_k):
        """Posterior ``(a, b)``, each of shape (K,)."""
        return 1.0 + N_k, alpha0 + np.hstack((np.cumsum(N_k[::-1])[-2::-1], 0))

    @staticmethod
    def expected_log_weights(ab):
        """``E[log pi_k]``, shape (K,)."""
        a, b = ab
        psi_ab = digamma(a + b)
        return digamma(a) - psi_ab + np.hstack((0, np.cumsum(digamma(b) - psi_ab)[:-1]))

    @staticmethod
    def mean_weights(ab):
        """``E[pi]`` of the sticks, renormalised over the K kept (scikit-learn's ``weights_``)."""
        a, b = ab
        w = a / (a + b) * np.hstack((1, np.cumprod(b / (a + b))[:-1]))
        return w / np.sum(w)

    @staticmethod
    def log_norm(ab):
        """``-sum_k log Beta(a_k, b_k)``, the sticks' log normaliser."""
        return -np.sum(betaln(ab[0], ab[1]))


#: weight_concentration_prior_type -> its updates
WEIGHT_PRIORS = {"dirichlet_process": DirichletProcess,
                 "dirichlet_distribution": DirichletDistribution}


# -- the precision prior: one entry per covariance layout -----------------------------------------
def _outer(a, b):
    return a[..., :, None] * b[..., None, :]


class _Full:
    """One Wishart per component; statistics ``M`` of shape (K, d, d)."""

    @staticmethod
    def scatter(stats, N_k):
        # sum_n r_nk (x_n - xbar_k)(x_n - xbar_k)^T / N_k; s s^T is exactly symmetric
        return (stats.M - _outer(stats.s, stats.s) / N_k[:, None, None]) / N_k[:, None, None]

    @staticmethod
    def ridge(S, reg_covar):
        return S + reg_covar * np.eye(S.shape[-1])

    @staticmethod
    def wishart(S, dev, N_k, beta, prior):
        nu = prior.nu0 + N_k
        W_inv = prior.Psi0 + N_k[:, None, None] * (
            S + (prior.beta0 / beta)[:, None, None] * _outer(dev, dev))
        return nu, W_inv / nu[:, None, None]

    @staticmethod
    def default_prior(X):
        return np.atleast_2d(np.cov(X.T))

    @staticmethod
    def check_prior(value, d, name):
        return _check_spd(value, d, name)


class _Tied(_Full):
    """One Wishart shared by every component, ``nu = nu_0 + N / K``; ``M`` is ``sum_n x_n x_n^T``."""

    @staticmethod
    def scatter(stats, N_k):
        S = (stats.M - (stats.s.T / N_k) @ stats.s) / N_k.sum()
        return 0.5 * (S + S.T)

    @staticmethod
    def wishart(S, dev, N_k, beta, prior):
        K = N_k.shape[0]
        nu = prior.nu0 + N_k.sum() / K
        W_inv = (prior.Psi0 + S * N_k.sum() / K
                 + prior.beta0 / K * ((N_k / beta) * dev.T) @ dev)
        return nu, 0.5 * (W_inv + W_inv.T) / nu


class _Diag:
    """Independent per-feature precisions per component; ``M`` of shape (K, d)."""

    @staticmethod
    def scatter(stats, N_k):
        xbar = stats.s / N_k[:, None]
        return stats.M / N_k[:, None] - xbar**2

    @staticmethod
    def ridge(S, reg_covar):
        return S + reg_covar

    @staticmethod
    def wishart(S, dev, N_k, beta, prior):
        nu = prior.nu0 + N_k
        W_inv = prior.Psi0 + N_k[:, None] * (S + (prior.beta0 / beta)[:, None] * dev**2)
        return nu, W_inv / nu[:, None]

    @staticmethod
    def default_prior(X):
        return np.var(X, axis=0, ddof=1)

    @staticmethod
    def check_prior(value, d, name):
        value = check_array(value, dtype=[np.float64, np.float32], ensure_2d=False)
        _check_shape(value, (d,), name)
        if np.any(value <= 0):
            raise ValueError(f"'{name}' should be positive; its smallest entry is "
                             f"{value.min():.5g}.")
        return value


class _Spherical(_Diag):
    """One precision per component; its statistics are diag's, averaged over the features."""

    @staticmethod
    def scatter(stats, N_k):
        return _Diag.scatter(stats, N_k).mean(axis=1)

    @staticmethod
    def wishart(S, dev, N_k, beta, prior):
        nu = prior.nu0 + N_k
        W_inv = prior.Psi0 + N_k * (S + prior.beta0 / beta * np.mean(dev**2, axis=1))
        return nu, W_inv / nu

    @staticmethod
    def default_prior(X):
        return np.var(X, axis=0, ddof=1).mean()

    @staticmethod
    def check_prior(value, d, name):
        if isinstance(value, bool) or not isinstance(value, Real) or not value > 0:
            raise ValueError(f"'{name}' should be a positive number for covariance_type="
                             f"'spherical', got {value!r}.")
        return value


#: storage layout -> scikit-learn's Wishart updates in it (the layout's own maths, such as the
#: quadratic form of the statistics, is in :mod:`models.storage`)
LAYOUTS = {FULL: _Full, TIED: _Tied, DIAG: _Diag, SPHERICAL: _Spherical}


def _check_shape(value, shape, name):
    if value.shape != shape:
        raise ValueError(f"The parameter '{name}' should have the shape of {shape}, but got "
                         f"{value.shape}; pass an array of shape {shape}.")


def _check_spd(value, d, name):
    value = check_array(value, dtype=[np.float64, np.float32], ensure_2d=False)
    _check_shape(value, (d, d), name)
    if not (np.allclose(value, value.T) and np.all(np.linalg.eigvalsh(value) > 0)):
        raise ValueError(f"'{name}' should be symmetric, positive-definite; make it so, e.g. "
                         "np.cov(X.T) or a multiple of np.eye(n_features).")
    return value


# -- the two halves of an iteration ------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class VariationalPrior:
    """scikit-learn's priors resolved against the data, in float64, centred at ``shift``.

    Attributes
    ----------
    weights : type
        The weight prior's updates (an entry of :data:`WEIGHT_PRIORS`).
    alpha0, beta0, nu0 : float
        ``weight_concentration_prior_``, ``mean_precision_prior_``,
        ``degrees_of_freedom_prior_``.
    m0 : ndarray of shape (d,)
        ``mean_prior_ - shift``.
    Psi0 : ndarray
        ``covariance_prior_`` (``W_0^{-1}``): (d, d) full and tied, (d,) diag, () spherical.
    """

    weights: type
    alpha0: float
    beta0: float
    m0: np.ndarray
    nu0: float
    Psi0: np.ndarray


@dataclasses.dataclass(frozen=True)
class VariationalPosterior:
    """The factors ``q(pi)`` and ``q(mu_k, Lambda_k)``, in scikit-learn's parameterisation.

    Attributes
    ----------
    weights : type
        The weight prior's updates (an entry of :data:`WEIGHT_PRIORS`).
    concentration : ndarray of shape (K,) or tuple of two
        ``weight_concentration_``: ``alpha`` (Dirichlet) or ``(a, b)`` (process).
    beta : ndarray of shape (K,)
        ``mean_precision_``.
    m : ndarray of shape (K, d)
        ``means_``.
    nu : ndarray of shape (K,) or float
        ``degrees_of_freedom_`` (a float for tied).
    Sigma : ndarray
        ``covariances_ = E[Lambda_k]^{-1} = W_k^{-1} / nu_k``, in the layout's shape.
    params : GMMParams
        ``(1/K, m, Sigma)`` with the Cholesky factors of ``Sigma``: the E-step kernel's point.
    """

    weights: type
    concentration: object
    beta: np.ndarray
    m: np.ndarray
    nu: object
    Sigma: np.ndarray
    params: GMMParams

    @classmethod
    def build(cls, weights, concentration, beta, m, nu, Sigma, covariance_type):
        """Check ``Sigma`` (one Cholesky factorisation) and attach the kernel's point.

        Raises
        ------
        ValueError
            ``Sigma`` is not positive-definite (scikit-learn's message).
        """
        K, d = m.shape
        fam = family(covariance_type)
        try:
            chol = np.linalg.cholesky(fam.to_full(Sigma, K, d))
        except np.linalg.LinAlgError:
            raise ValueError(_ILL_DEFINED) from None
        if not np.all(np.isfinite(chol)):
            raise ValueError(_ILL_DEFINED)
        params = GMMParams.unchecked(np.full(K, 1.0 / K), m, Sigma, family(covariance_type), chol,
                                     covariance_type)
        return cls(weights, concentration, beta, m, nu, Sigma, params)

    @property
    def log_det_Sigma(self):
        """``log |Sigma_k|``, shape (K,) (tied: repeated)."""
        return 2 * np.log(np.diagonal(self.params.cholesky, axis1=1, axis2=2)).sum(axis=1)

    @property
    def nu_k(self):
        """``nu_k``, shape (K,) (tied: repeated)."""
        return np.broadcast_to(self.nu, self.beta.shape)


def m_step(stats, prior, covariance_type, reg_covar, shift, dtype=np.float64):
    r"""Variational M-step: the posterior factors from the statistics of one pass.

    .. math:: \beta_k = \beta_0 + N_k, \quad m_k = (\beta_0 m_0 + N_k \bar x_k) / \beta_k,
        \quad \nu_k = \nu_0 + N_k, \quad \Sigma_k = \bigl(W_0^{-1} + N_k S_k
        + \tfrac{\beta_0 N_k}{\beta_k} (\bar x_k - m_0)(\bar x_k - m_0)^T\bigr) / \nu_k

    (Bishop 10.60-10.63; ``Sigma_k = W_k^{-1} / nu_k``), with ``N_k`` floored by ``10 eps`` and
    ``reg_covar`` on the diagonal of ``S_k``, as scikit-learn does. Each layout's version is in
    :data:`LAYOUTS`; the weights' in :data:`WEIGHT_PRIORS`.

    Parameters
    ----------
    stats : em.mstep.SufficientStats
        Of the responsibilities, over data centred at ``shift``.
    prior : VariationalPrior
    covariance_type : {"full", "tied", "diag", "spherical"}
    reg_covar : float
        Added to the diagonal of the scatter ``S_k``.
    shift : ndarray of shape (d,)
    dtype : numpy dtype, default float64
        The responsibilities' dtype: ``10 eps`` of it is added to ``N_k`` (scikit-learn's
        initial responsibilities have the data's dtype, the later ones are float64).

    Returns
    -------
    VariationalPosterior
    """
    layout = LAYOUTS[family(covariance_type).storage]
    N_k = stats.N_k + 10 * np.finfo(dtype).eps
    xbar = stats.s / N_k[:, None]
    S = layout.ridge(layout.scatter(stats, N_k), reg_covar)
    beta = prior.beta0 + N_k
    m = (prior.beta0 * prior.m0 + N_k[:, None] * xbar) / beta[:, None]
    nu, Sigma = layout.wishart(S, xbar - prior.m0, N_k, beta, prior)
    return VariationalPosterior.build(prior.weights, prior.weights.update(prior.alpha0, N_k),
                                      beta, m + shift, nu, Sigma, covariance_type)


def _log_det_gap(post):
    r"""``E[log |Lambda_k|] - log |E[Lambda_k]| = sum_i psi((nu_k + 1 - i)/2) + d log 2 - d log nu_k``."""
    d = post.m.shape[1]
    nu = post.nu_k
    return (np.sum(digamma(0.5 * (nu - np.arange(d)[:, None])), axis=0) + d * np.log(2.0)
            - d * np.log(nu))


def _offset(post):
    """What the variational E-step adds to the log joint at ``(1/K, m_k, Sigma_k)``, shape (K,)."""
    d, K = post.m.shape[1], post.m.shape[0]
    return (post.weights.expected_log_weights(post.concentration) + np.log(K)
            + 0.5 * (_log_det_gap(post) - d / post.beta))


def variational_kernel(post, shift, dtype=np.float64):
    r"""The E-step kernel of ``log rho_nk`` for data centred at ``shift``.

    :func:`models.features.log_joint_of` at ``post.params``, its constant column moved by

    .. math:: E[\log \pi_k] + \log K
        + \tfrac12 \bigl(E[\log|\Lambda_k|] - \log|E[\Lambda_k]| - d / \beta_k\bigr)

    Parameters
    ----------
    post : VariationalPosterior
    shift : ndarray of shape (d,)
    dtype : numpy dtype, default float64

    Returns
    -------
    em.estep.LogJoint
    """
    kernel = log_joint_of(post.params, shift, np.float64)
    A = kernel.A.copy()
    A[:, 0] += _offset(post)
    return dataclasses.replace(kernel, A=A.astype(dtype))


def expected_log_rho(post, stats, shift, covariance_type):
    """``sum_nk r_nk log rho_nk`` from the statistics of the responsibilities ``r``.

    Parameters
    ----------
    post : VariationalPosterior
        The factors ``log rho`` was computed at.
    stats : em.mstep.SufficientStats
        Of ``r``, over data centred at ``shift``.
    shift : ndarray of shape (d,)
    covariance_type : str

    Returns
    -------
    float
    """
    d = post.m.shape[1]
    c = _offset(post) - np.log(post.m.shape[0]) - 0.5 * (d * _LOG_2PI + post.log_det_Sigma)
    storage = family(covariance_type).storage
    return float(stats.N_k @ c - 0.5 * storage.quadratic(stats, post.m - shift, post.Sigma))


def log_wishart_norm(nu, log_det_W, d):
    r"""``log B(W, nu)`` of the Wishart without its ``pi`` term (Bishop B.79).

    .. math:: -\tfrac{\nu}2 \log |W| - \tfrac{\nu d}2 \log 2
        - \sum_{i=1}^d \log \Gamma\bigl(\tfrac{\nu + 1 - i}2\bigr)

    Parameters
    ----------
    nu : ndarray of shape (K,)
    log_det_W : ndarray of shape (K,)
    d : int

    Returns
    -------
    ndarray of shape (K,)
    """
    return -(0.5 * nu * log_det_W + 0.5 * nu * d * np.log(2.0)
             + np.sum(gammaln(0.5 * (nu - np.arange(d)[:, None])), axis=0))


def bound_terms(post):
    """The lower bound's terms in the posterior factors (all but the entropy of ``r``).

    Parameters
    ----------
    post : VariationalPosterior

    Returns
    -------
    float
        ``-sum_k log B(W_k, nu_k) - log C(alpha) - d/2 sum_k log beta_k`` (tied: the one
        Wishart counted K times, as scikit-learn does).
    """
    d = post.m.shape[1]
    nu = post.nu_k
    log_det_W = -post.log_det_Sigma - d * np.log(nu)
    return float(-np.sum(log_wishart_norm(nu, log_det_W, d))
                 - post.weights.log_norm(post.concentration)
                 - 0.5 * d * np.sum(np.log(post.beta)))


def initial_stats(Xc, resp, storage, shift):
    """Statistics of the initial responsibilities, as scikit-learn's first M-step reads them.

    Its tied scatter is ``(X^T X - sum_k N_k xbar_k xbar_k^T) / sum_k N_k`` in the data's own
    coordinates, with the second moment of every row whatever the responsibilities. When they
    do not sum to one per row (k-means++ and random_from_data put K rows in one component
    each) that depends on the origin; the centred ``M`` returned here gives the same scatter.

    Parameters
    ----------
    Xc : ndarray of shape (N, d)
        Rows centred at ``shift``, float64.
    resp : ndarray of shape (N, K)
    storage : models.storage.Storage
    shift : ndarray of shape (d,)

    Returns
    -------
    models.features.SufficientStats
    """
    stats = block_stats(Xc, np.asarray(resp, np.float64), storage)
    if storage.shared:
        # X^T X = Xc^T Xc + N c c^T, and sum_k s_k s_k^T / N_k gains c v^T + v c^T + W c c^T
        v, W = stats.s.sum(axis=0), stats.N_k.sum()
        M = Xc.T @ Xc + (Xc.shape[0] - W) * np.outer(shift, shift) - _outer(shift, v) \
            - _outer(v, shift)
        stats = dataclasses.replace(stats, M=0.5 * (M + M.T))
    return stats


class _Progress:
    """scikit-learn's verbose messages (``BaseMixture._print_verbose_msg_*``)."""

    def __init__(self, verbose, interval):
        self.verbose, self.interval = verbose, interval

    def begin(self, init):
        if self.verbose >= 1:
            print(f"Initialization {init}")
            self.start = self.last = time.time()

    def iteration(self, n_iter, change):
        if n_iter % self.interval == 0:
            if self.verbose == 1:
                print(f"  Iteration {n_iter}")
            elif self.verbose >= 2:
                now = time.time()
                print(f"  Iteration {n_iter}\t time lapse {now - self.last:.5f}s\t "
                      f"ll change {change:.5f}")
                self.last = now

    def end(self, lower_bound, converged):
        state = "converged" if converged else "did not converge"
        if self.verbose == 1:
            print(f"Initialization {state}.")
        elif self.verbose >= 2:
            print(f"Initialization {state}. time lapse {time.time() - self.start:.5f}s\t "
                  f"lower bound {lower_bound:.5f}.")


class BayesianGaussianMixture(DensityMixin, BaseEstimator):
    """Variational Bayesian Gaussian mixture: a drop-in for scikit-learn's.

    The constructor, fitted attributes and methods are ``sklearn.mixture.BayesianGaussianMixture``'s,
    with its meanings and defaults; each iteration is one streamed pass of
    :func:`em.fit.em_pass` (see the module docstring for the updates).

    Parameters
    ----------
    n_components : int, default 1
        K, the most components the fit may use.
    covariance_type : {"full", "tied", "diag", "spherical"}, default "full"
    tol : float, default 1e-3
        Convergence threshold on the change of the lower bound (a total, not per sample).
    reg_covar : float, default 1e-6
        Non-negative ridge added to the diagonal of every scatter ``S_k``.
    max_iter : int, default 100
        Iterations per initialisation (0 keeps the initialisation).
    n_init : int, default 1
        Initialisations; the highest lower bound wins.
    init_params : {"kmeans", "k-means++", "random", "random_from_data"}, default "kmeans"
        Initial responsibilities (:func:`initial_resp`).
    weight_concentration_prior_type : {"dirichlet_process", "dirichlet_distribution"}, \
default "dirichlet_process"
    weight_concentration_prior : float or None, default None
        ``alpha_0 > 0``; None gives ``1 / n_components``.
    mean_precision_prior : float or None, default None
        ``beta_0 > 0``; None gives 1.
    mean_prior : array-like of shape (n_features,) or None, default None
        ``m_0``; None gives the column means of ``X``.
    degrees_of_freedom_prior : float or None, default None
        ``nu_0 > n_features - 1``; None gives ``n_features``.
    covariance_prior : float or array-like or None, default None
        ``W_0^{-1}``: (n_features, n_features) full and tied, (n_features,) diag, a float
        spherical. None gives the sample covariance of ``X`` (its diagonal for diag, the mean
        of that for spherical).
    random_state : int, RandomState or None, default None
        Seeds the initialisation and :meth:`sample`.
    warm_start : bool, default False
        Start each ``fit`` from the last solution (``n_init`` is then 1).
    verbose : int, default 0
        1 prints each initialisation and iteration; 2 adds timings and changes.
    verbose_interval : int, default 10
        Iterations between messages.
    learning_decay, learning_offset : float, default 1.0 and 0.0
        :meth:`partial_fit`'s step sizes ``rho_t = (t + learning_offset)^(-learning_decay)``
        (:mod:`em.online`), ``learning_decay`` in (0.5, 1]. The defaults average the blocks after
        the first (which starts the fit) equally; a smaller decay forgets early blocks faster.

    Attributes
    ----------
    weights_ : ndarray of shape (n_components,)
        ``E[pi]`` (for the process: of the K sticks, renormalised).
    means_ : ndarray of shape (n_components, n_features)
        ``m_k``.
    covariances_ : ndarray
        ``E[Lambda_k]^{-1}``: (K, d, d) full, (d, d) tied, (K, d) diag, (K,) spherical.
    precisions_ : ndarray
        ``E[Lambda_k]``, same shape.
    precisions_cholesky_ : ndarray
        ``P_k`` with ``precisions_ = P_k P_k^T`` (diag and spherical: the square roots).
    weight_concentration_ : ndarray of shape (n_components,) or tuple of two
        ``alpha_k``, or the process's ``(a_k, b_k)``.
    mean_precision_ : ndarray of shape (n_components,)
        ``beta_k``.
    degrees_of_freedom_ : ndarray of shape (n_components,) or float
        ``nu_k`` (one float for tied).
    weight_concentration_prior_, mean_precision_prior_, degrees_of_freedom_prior_ : float
    mean_prior_ : ndarray of shape (n_features,)
    covariance_prior_ : float or ndarray
    converged_ : bool
    n_iter_ : int
        Iterations of the best initialisation.
    lower_bound_ : float
        Lower bound of the best initialisation (``-inf`` when ``max_iter = 0``).
    lower_bounds_ : list of float
        The lower bound after each iteration of the best initialisation.
    n_features_in_ : int
    feature_names_in_ : ndarray of str
        Only when ``X`` has string column names.
    n_samples_seen_ : int
        After :meth:`partial_fit`: the rows it has seen.

    References
    ----------
    Bishop, C. M. (2006). Pattern Recognition and Machine Learning, section 10.2. Springer.
    Blei, D. M. and Jordan, M. I. (2006). Variational inference for Dirichlet process
    mixtures. Bayesian Analysis 1(1).
    """

    def __init__(self, *, n_components=1, covariance_type="full", tol=1e-3, reg_covar=1e-6,
                 max_iter=100, n_init=1, init_params="kmeans",
                 weight_concentration_prior_type="dirichlet_process",
                 weight_concentration_prior=None, mean_precision_prior=None, mean_prior=None,
                 degrees_of_freedom_prior=None, covariance_prior=None, random_state=None,
                 warm_start=False, verbose=0, verbose_interval=10, learning_decay=1.0,
                 learning_offset=0.0):
        self.n_components = n_components
        self.covariance_type = covariance_type
        self.tol = tol
        self.reg_covar = reg_covar
        self.max_iter = max_iter
        self.n_init = n_init
        self.init_params = init_params
        self.weight_concentration_prior_type = weight_concentration_prior_type
        self.weight_concentration_prior = weight_concentration_prior
        self.mean_precision_prior = mean_precision_prior
        self.mean_prior = mean_prior
        self.degrees_of_freedom_prior = degrees_of_freedom_prior
        self.covariance_prior = covariance_prior
        self.random_state = random_state
        self.warm_start = warm_start
        self.verbose = verbose
        self.verbose_interval = verbose_interval
        self.learning_decay = learning_decay
        self.learning_offset = learning_offset

    # -- checks -----------------------------------------------------------------------------
    def _check_settings(self):
        for name in ("n_components", "n_init", "verbose_interval"):
            check_positive(getattr(self, name), name, integer=True)
        for name in ("max_iter", "verbose"):
            check_positive(getattr(self, name), name, allow_zero=True, integer=True)
        for name in ("tol", "reg_covar"):
            check_positive(getattr(self, name), name, allow_zero=True)
        for name, options in (("covariance_type", SKLEARN_TYPES), ("init_params", INIT_PARAMS),
                              ("weight_concentration_prior_type", tuple(WEIGHT_PRIORS))):
            value = getattr(self, name)
            if not isinstance(value, str) or value not in options:
                raise ValueError(f"{name}={value!r} is not supported; use one of "
                                 f"{', '.join(map(repr, options))}.")
        for name in ("weight_concentration_prior", "mean_precision_prior",
                     "degrees_of_freedom_prior"):
            if getattr(self, name) is not None:
                check_positive(getattr(self, name), name)
        if not isinstance(self.warm_start, bool | np.bool_):
            raise TypeError(f"warm_start must be True or False, got {self.warm_start!r}.")

    def _resolve_priors(self, X, shift):
        """Set the ``*_prior_`` attributes from the settings and ``X``; return them centred."""
        d = X.shape[1]
        K = self.n_components
        self.weight_concentration_prior_ = (1.0 / K if self.weight_concentration_prior is None
                                            else self.weight_concentration_prior)
        self.mean_precision_prior_ = (1.0 if self.mean_precision_prior is None
                                      else self.mean_precision_prior)
        if self.mean_prior is None:
            self.mean_prior_ = X.mean(axis=0)
        else:
            self.mean_prior_ = check_array(self.mean_prior, dtype=[np.float64, np.float32],
                                           ensure_2d=False)
            _check_shape(self.mean_prior_, (d,), "mean_prior")
        nu0 = self.degrees_of_freedom_prior
        if nu0 is None:
            self.degrees_of_freedom_prior_ = d
        elif nu0 > d - 1.0:
            self.degrees_of_freedom_prior_ = nu0
        else:
            raise ValueError(f"The parameter 'degrees_of_freedom_prior' should be greater than "
                             f"{d - 1}, but got {nu0:.3f}. Use at least n_features - 1 plus a "
                             "little, or None (n_features).")
        layout = LAYOUTS[family(self.covariance_type).storage]
        self.covariance_prior_ = (
            layout.default_prior(X) if self.covariance_prior is None else
            layout.check_prior(self.covariance_prior, d,
                               f"{self.covariance_type} covariance_prior"))
        return VariationalPrior(
            weights=WEIGHT_PRIORS[self.weight_concentration_prior_type],
            alpha0=float(self.weight_concentration_prior_),
            beta0=float(self.mean_precision_prior_),
            m0=np.asarray(self.mean_prior_, np.float64) - shift,
            nu0=float(self.degrees_of_freedom_prior_),
            Psi0=np.asarray(self.covariance_prior_, np.float64))

    # -- fitting ----------------------------------------------------------------------------
    def fit(self, X, y=None):
        """Fit the variational posterior, keeping the best of ``n_init`` initialisations.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : ignored

        Returns
        -------
        self
        """
        self.fit_predict(X, y)
        return self

    def fit_predict(self, X, y=None):
        """Fit, then return the most responsible component of each sample.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : ignored

        Returns
        -------
        labels : ndarray of int, shape (n_samples,)
        """
        self._check_settings()
        X = validate_data(self, X, dtype=[np.float64, np.float32], ensure_min_samples=2)
        K, N = self.n_components, X.shape[0]
        if N < K:
            raise ValueError(f"Expected n_samples >= n_components but got n_components = {K}, "
                             f"n_samples = {N}; lower n_components or add data.")
        shift = X.mean(axis=0, dtype=np.float64)
        prior = self._resolve_priors(X, shift)
        self._online = None              # partial_fit's running statistics start afresh
        do_init = not (self.warm_start and hasattr(self, "converged_"))
        progress = _Progress(self.verbose, self.verbose_interval)
        rs = check_random_state(self.random_state)
        storage = family(self.covariance_type).storage
        Xc = None
        best, best_lower_bound, best_lower_bounds, best_n_iter = None, -np.inf, [], 0
        self.converged_ = False
        for init in range(self.n_init if do_init else 1):
            progress.begin(init)
            if do_init:
                Xc = X - shift if Xc is None else Xc
                resp = initial_resp(X, K, self.init_params, rs)
                post = m_step(initial_stats(Xc, resp, storage, shift), prior,
                              self.covariance_type, self.reg_covar, shift, resp.dtype)
            else:
                post = self._posterior()
            if self.max_iter == 0:
                best, best_n_iter = post, 0
                continue
            start = -np.inf if do_init else self.lower_bound_
            post, lower_bounds, converged = self._iterate(X, shift, post, prior, start, progress)
            progress.end(lower_bounds[-1], converged)
            if lower_bounds[-1] > best_lower_bound or best_lower_bound == -np.inf:
                best, best_lower_bound = post, lower_bounds[-1]
                best_lower_bounds, best_n_iter = lower_bounds, len(lower_bounds)
                self.converged_ = converged
        if not self.converged_ and self.max_iter > 0:
            warnings.warn("Best performing initialization did not converge. Try different init "
                          "parameters, or increase max_iter, tol, or check for degenerate data.",
                          ConvergenceWarning, stacklevel=2)
        self._set_posterior(best)
        self.n_iter_ = best_n_iter
        self.lower_bound_ = best_lower_bound
        self.lower_bounds_ = best_lower_bounds
        return self._log_rho(X, best).argmax(axis=1)

    def partial_fit(self, X, y=None):
        """One step of online variational Bayes on a block of rows (:mod:`em.online`).

        The first call on an unfitted estimator fits the block (as :meth:`fit`, which also
        resolves the priors against it); each later call computes the block's statistics of
        ``r_nk`` at the current posterior, averages them into the running statistics with
        weight ``(t + learning_offset)^(-learning_decay)``, and takes the variational M-step
        on them as if they came from every row seen. Memory is one block's.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : ignored

        Returns
        -------
        self
        """
        kappa, tau0 = check_schedule(self.learning_decay, self.learning_offset)
        if not hasattr(self, "converged_"):
            self.fit(X)
        X = validate_data(self, X, dtype=[np.float64, np.float32], reset=False)
        post, online = self._posterior(), getattr(self, "_online", None)
        if online is None:      # the running statistics start at this block, centred at it
            shift = X.mean(axis=0, dtype=np.float64)
            self._online = RunningStats.start(self._block_stats(X, post, shift), X.shape[0],
                                              shift)
            self._online_prior = self._current_prior(shift)
        else:
            online.add(self._block_stats(X, post, online.shift), X.shape[0], kappa, tau0)
            post = m_step(online.total(), self._online_prior, self.covariance_type,
                          self.reg_covar, online.shift)
            self._set_posterior(post)
        self.n_samples_seen_ = self._online.n_seen
        return self

    def _block_stats(self, X, post, shift):
        """Statistics of a block's ``r_nk`` at the posterior ``post``."""
        storage = family(self.covariance_type).storage
        chunk = default_chunk(self.n_components, X.shape[1], storage, np.float64)
        return em_pass(X, None, shift, post.params, np.float64, chunk,
                       kernel=variational_kernel(post, shift))[0]

    def _current_prior(self, shift):
        """The resolved ``*_prior_`` attributes as a prior centred at ``shift``."""
        return VariationalPrior(
            weights=WEIGHT_PRIORS[self.weight_concentration_prior_type],
            alpha0=float(self.weight_concentration_prior_),
            beta0=float(self.mean_precision_prior_),
            m0=np.asarray(self.mean_prior_, np.float64) - shift,
            nu0=float(self.degrees_of_freedom_prior_),
            Psi0=np.asarray(self.covariance_prior_, np.float64))

    def _iterate(self, X, shift, post, prior, lower_bound, progress):
        """Coordinate ascent from ``post`` until the lower bound changes by less than ``tol``.

        Each iteration is one pass (E-step at ``post`` and the statistics of its
        responsibilities), the M-step, and the bound: the entropy of the pass's
        responsibilities plus the new factors' terms, as scikit-learn orders them.
        """
        storage = family(self.covariance_type).storage
        chunk = default_chunk(self.n_components, X.shape[1], storage, np.float64)
        lower_bounds, converged, XX = [], False, None
        for n_iter in range(1, self.max_iter + 1):
            previous = lower_bound
            stats, log_norm, _ = em_pass(X, None, shift, post.params, np.float64, chunk,
                                         XX=XX, kernel=variational_kernel(post, shift))
            if storage.shared:
                XX = stats.M                  # sum_n x_n x_n^T: the same in every pass
            entropy = log_norm - expected_log_rho(post, stats, shift, self.covariance_type)
            post = m_step(stats, prior, self.covariance_type, self.reg_covar, shift)
            lower_bound = entropy + bound_terms(post)
            lower_bounds.append(lower_bound)
            change = lower_bound - previous
            progress.iteration(n_iter, change)
            if abs(change) < self.tol:
                converged = True
                break
        return post, lower_bounds, converged

    def _set_posterior(self, post):
        self.weight_concentration_ = post.concentration
        self.mean_precision_ = post.beta
        self.means_ = post.m
        self.degrees_of_freedom_ = post.nu
        self.covariances_ = post.Sigma
        self.precisions_cholesky_ = precision_cholesky(post.params)
        self.precisions_ = family(self.covariance_type).storage.precisions(post.Sigma)
        self.weights_ = post.weights.mean_weights(post.concentration)

    def _posterior(self):
        """The posterior factors from the public attributes (which a user may set)."""
        concentration = self.weight_concentration_
        concentration = (tuple(np.asarray(c, np.float64) for c in concentration)
                         if isinstance(concentration, tuple)
                         else np.asarray(concentration, np.float64))
        nu = self.degrees_of_freedom_
        return VariationalPosterior.build(
            WEIGHT_PRIORS[self.weight_concentration_prior_type], concentration,
            np.asarray(self.mean_precision_, np.float64),
            np.asarray(self.means_, np.float64),
            float(nu) if np.ndim(nu) == 0 else np.asarray(nu, np.float64),
            np.asarray(self.covariances_, np.float64), self.covariance_type)

    # -- prediction -------------------------------------------------------------------------
    def _log_rho(self, X, post=None):
        """``log rho_nk`` of checked rows, shape (n_samples, n_components)."""
        post = self._posterior() if post is None else post
        shift = X.mean(axis=0, dtype=np.float64)
        return log_joint_rows(X, variational_kernel(post, shift), shift,
                              family(self.covariance_type).storage)

    def _checked(self, X):
        check_is_fitted(self)
        return validate_data(self, X, dtype=[np.float64, np.float32], reset=False)

    def predict_proba(self, X):
        """Responsibilities ``r_nk``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        ndarray of shape (n_samples, n_components)
        """
        log_rho = self._log_rho(self._checked(X))
        return np.exp(log_rho - logsumexp(log_rho, axis=1)[:, None])

    def predict(self, X):
        """Most responsible component of each sample.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        ndarray of int, shape (n_samples,)
        """
        return self._log_rho(self._checked(X)).argmax(axis=1)

    def score_samples(self, X):
        """``log sum_k rho_nk`` of each sample (scikit-learn's score for this model).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        ndarray of shape (n_samples,)
        """
        return logsumexp(self._log_rho(self._checked(X)), axis=1)

    def score(self, X, y=None):
        """Mean of :meth:`score_samples`.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : ignored

        Returns
        -------
        float
        """
        return float(self.score_samples(X).mean())

    def sample(self, n_samples=1):
        """Draw from the mixture at ``(weights_, means_, covariances_)``, grouped by component.

        Parameters
        ----------
        n_samples : int, default 1

        Returns
        -------
        X : ndarray of shape (n_samples, n_features)
        y : ndarray of int, shape (n_samples,)
            Component of each draw.
        """
        check_is_fitted(self)
        weights = np.asarray(self.weights_, np.float64)
        params = GMMParams(weights / weights.sum(), np.asarray(self.means_, np.float64),
                           np.asarray(self.covariances_, np.float64), self.covariance_type)
        return sample_mixture(params, n_samples, self.random_state)
