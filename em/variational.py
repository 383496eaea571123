r"""Variational Bayes for the suite's own model, under exactly the :class:`models.Prior` of MAP and PyMC.

The model (:mod:`models.prior`): ``pi ~ Dir(alpha)``, ``mu_k | Sigma_k ~ N(m0, Sigma_k / kappa0)``,
``Sigma_k`` inverse-Wishart (full, tied) or inverse-gamma per variance (diag, spherical), once for
a family that shares it (EII, EEI, EEE); ``z_n ~ Cat(pi)``, ``x_n | z_n = k ~ N(mu_k, Sigma_k)``.
The mean-field posterior is ``q(z) q(pi) q(mu, Sigma)``, for the six conjugate families.

An iteration is EM's (:func:`em.fit.em_pass`, then a second half on the same statistics
``N_k``, ``s_k = sum_n r_nk x_n`` and the second moments); only what each half computes differs.

**The E-step** at ``q``: ``r_nk`` proportional to ``rho_nk``, with (Bishop 2006, 10.46 and
10.64-10.66)

.. math::
    \log \rho_{nk} = E[\log \pi_k] + \tfrac12 E[\log|\Lambda_k|] - \tfrac d2 \log 2\pi
    - \tfrac12 \bigl(d / \kappa_k + (x_n - m_k)^T E[\Lambda_k] (x_n - m_k)\bigr)

which is the EM log joint at ``(E[pi], m_k, E[Lambda_k]^{-1})`` plus a constant per component
(:func:`offset`): so the pass is EM's, with the kernel's constant column moved.

**The M-step** from the statistics: ``q(pi, mu, Sigma)`` is the conjugate posterior of the
weighted rows,

.. math::
    \alpha_k = \alpha_{0k} + N_k, \quad \kappa_k = \kappa_0 + N_k, \quad
    m_k = \frac{\kappa_0 m_0 + N_k \bar x_k}{\kappa_k}, \quad
    q(\Sigma) = \text{the prior's form with } (\nu_0 + n, \Psi_0 + S + B)

with ``S`` the scatter about ``xbar_k`` and ``B_k = kappa0 N_k / kappa_k (xbar_k - m0)(...)^T``,
summed over the components that share a covariance
(:meth:`models.storage.Storage.posterior_scale`).

**The objective**, exactly, with every constant: at ``q`` and its own E-step,

.. math::
    \mathcal L(q) = \sum_n \log \sum_k \rho_{nk} - \mathrm{KL}\bigl(q(\pi, \mu, \Sigma)
    \,\|\, p(\pi, \mu, \Sigma)\bigr)

The pass returns the first term as EM's returns the log-likelihood; the KL of the Dirichlet, of
the normals given the covariances, and of the covariance factors is closed form (:func:`kl`).
Coordinate ascent never lowers it. This is EM's objective ``log p(X | theta) + log p(theta)``
with the point replaced by a distribution.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np
from scipy.special import digamma, gammaln

from em.estep import log_joint_rows
from models.features import log_joint_of
from models.params import GMMParams
from models.prior import Prior

#: components whose expected weight is at most this do not count in ``effective_n_components_``
WEIGHT_THRESHOLD = 1e-3


@dataclass(frozen=True, eq=False)
class Variational:
    r"""The factors ``q(pi) q(mu, Sigma)``: Dirichlet, then normal given each covariance factor.

    .. math:: q = \mathrm{Dir}(\pi \mid \alpha) \prod_k \mathcal N(\mu_k \mid m_k,
        \Sigma_k / \kappa_k)\, q(\Sigma)

    Attributes
    ----------
    alpha : ndarray of shape (K,)
    kappa : ndarray of shape (K,)
    m : ndarray of shape (K, d)
        In the data's coordinates.
    shape, scale : ndarray
        ``q(Sigma)``'s parameters, one per covariance factor (K, or 1 when shared): ``nu``
        (m,) and ``Psi`` (m, d, d) of an inverse-Wishart, or ``a`` (m,) and ``b`` of an
        inverse-gamma per variance ((m, d) diag, (m,) spherical).
    family : models.Family
    covariance_type : str
        The name the point carries.
    """

    alpha: np.ndarray
    kappa: np.ndarray
    m: np.ndarray
    shape: np.ndarray
    scale: np.ndarray
    family: object
    covariance_type: str

    @property
    def K(self):
        """Number of components."""
        return self.m.shape[0]

    @property
    def d(self):
        """Number of features."""
        return self.m.shape[1]

    @cached_property
    def _expected(self):
        return self.family.storage.expected_precision(self.shape, self.scale, self.d)

    @cached_property
    def params(self):
        """The plug-in point ``(E[pi], m, E[Lambda_k]^{-1})``: the E-step's kernel is its log joint.

        Returns
        -------
        GMMParams
        """
        storage = self.family.storage
        Sigma = storage.from_components(self._expected[0], self.K)
        return GMMParams(self.alpha / self.alpha.sum(), self.m, Sigma, self.covariance_type)

    @property
    def log_det_gap(self):
        """``E[log|Lambda_k|] - log|E[Lambda_k]|``, shape (K,)."""
        return np.broadcast_to(self._expected[1], (self.K,))

    @property
    def expected_log_weights(self):
        r"""``E[log pi_k] = psi(alpha_k) - psi(sum_j alpha_j)``, shape (K,)."""
        return digamma(self.alpha) - digamma(self.alpha.sum())

    def permute(self, perm):
        """The same ``q`` with its components reordered: new component k is old ``perm[k]``.

        Parameters
        ----------
        perm : array-like of int, shape (K,)

        Returns
        -------
        Variational
        """
        perm = np.asarray(perm)
        shared = self.family.shared_prior
        return dataclasses.replace(self, alpha=self.alpha[perm], kappa=self.kappa[perm],
                                   m=self.m[perm], shape=self.shape if shared else self.shape[perm],
                                   scale=self.scale if shared else self.scale[perm])

    def mean(self):
        """The posterior means ``(E[pi], E[mu], E[Sigma])`` (``Sigma`` NaN where it has none).

        Returns
        -------
        dict
            ``pi`` (K,), ``mu`` (K, d), ``Sigma`` in the storage's shape.
        """
        storage = self.family.storage
        Sigma = storage.from_components(storage.posterior_mean(self.shape, self.scale, self.d),
                                        self.K)
        return {"pi": self.alpha / self.alpha.sum(), "mu": self.m, "Sigma": Sigma}

    def draw(self, n, rng):
        """``n`` independent draws of ``(pi, mu, Sigma)`` from ``q``.

        Parameters
        ----------
        n : int
        rng : numpy.random.Generator

        Returns
        -------
        dict
            ``pi`` (n, K), ``mu`` (n, K, d), ``Sigma`` (n, *the storage's shape).
        """
        storage, K, d = self.family.storage, self.K, self.d
        pi = rng.dirichlet(self.alpha, size=n)
        factors = storage.draw(self.shape, self.scale, n, rng)
        Sigma = np.stack([storage.from_components(f, K) for f in factors])
        L = np.linalg.cholesky(self.family.to_full(Sigma, K, d))           # (n, K, d, d)
        z = rng.standard_normal((n, K, d))
        mu = self.m + np.einsum("nkij,nkj->nki", L, z) / np.sqrt(self.kappa)[:, None]
        return {"pi": pi, "mu": mu, "Sigma": Sigma}

    def log_density(self, pi, mu, Sigma):
        """``log q(pi, mu, Sigma)`` of one point (scipy's densities).

        Parameters
        ----------
        pi : ndarray of shape (K,)
        mu : ndarray of shape (K, d)
        Sigma : ndarray in the storage's shape

        Returns
        -------
        float
        """
        from scipy import stats

        fam, K, d = self.family, self.K, self.d
        full = fam.to_full(Sigma, K, d)
        lp = stats.dirichlet.logpdf(pi, self.alpha)
        lp += sum(stats.multivariate_normal.logpdf(mu[k], self.m[k], full[k] / self.kappa[k])
                  for k in range(K))
        factors = np.asarray(fam.per_component(Sigma, K))
        factors = factors[:1] if fam.shared_prior else factors
        return float(lp + fam.storage.log_density(factors, self.shape, self.scale).sum())


def posterior(stats, fam, prior_c, shift, covariance_type=None):
    r"""The variational M-step: ``q(pi, mu, Sigma)`` from the statistics of the responsibilities.

    .. math:: \alpha_k = \alpha_{0k} + N_k, \quad \kappa_k = \kappa_0 + N_k, \quad
        m_k = (\kappa_0 m_0 + N_k \bar x_k) / \kappa_k

    and ``q(Sigma)`` by :meth:`models.storage.Storage.posterior_scale` from
    ``S + B`` (pooled over the components of a shared covariance).

    Parameters
    ----------
    stats : models.features.SufficientStats
        Of the responsibilities, over data centred at ``shift``.
    fam : models.Family
        A conjugate family.
    prior_c : Prior
        The proper prior, centred at ``shift``.
    shift : ndarray of shape (d,)
    covariance_type : str or None
        The name the posterior's point carries (default ``fam.name``).

    Returns
    -------
    Variational
    """
    storage = fam.storage
    N_k, K = stats.N_k, stats.s.shape[0]
    kappa0, m0 = prior_c.kappa0, prior_c.m0
    kappa = kappa0 + N_k
    safe = np.where(N_k > 0, N_k, 1.0)
    xbar = stats.s / safe[:, None]
    m = (kappa0 * m0 + stats.s) / kappa[:, None]
    S = storage.scatter(stats.M, N_k, xbar)
    B = storage.outer(kappa0 * N_k / kappa, xbar - m0)
    T = storage.posterior_scatter(S, B, fam.shared_prior)
    n = N_k.sum(keepdims=True) if fam.shared_prior else N_k
    shape, scale = storage.posterior_scale(prior_c, T, n)
    return Variational(prior_c.alpha_for(K) + N_k, kappa, m + shift, np.asarray(shape, np.float64),
                       storage.symmetrised(np.asarray(scale, np.float64)), fam,
                       fam.name if covariance_type is None else covariance_type)


def offset(q):
    r"""What the E-step adds to the log joint at :attr:`Variational.params`, per component.

    .. math:: E[\log \pi_k] - \log E[\pi_k]
        + \tfrac12 \bigl(E[\log|\Lambda_k|] - \log|E[\Lambda_k]|\bigr) - \tfrac{d}{2 \kappa_k}

    Returns
    -------
    ndarray of shape (K,)
    """
    return (q.expected_log_weights - np.log(q.alpha / q.alpha.sum()) + 0.5 * q.log_det_gap
            - 0.5 * q.d / q.kappa)


def kernel(q, shift, dtype=np.float64):
    """The E-step kernel of ``log rho_nk`` for data centred at ``shift``.

    :func:`models.features.log_joint_of` at ``q.params``, its constant column moved by
    :func:`offset`.

    Parameters
    ----------
    q : Variational
    shift : ndarray of shape (d,)
    dtype : numpy dtype, default float64

    Returns
    -------
    models.features.LogJoint
    """
    base = log_joint_of(q.params, shift, np.float64)
    A = base.A.copy()
    A[:, 0] += offset(q)
    return dataclasses.replace(base, A=A.astype(dtype))


def kl(q, prior):
    r"""``KL(q(pi, mu, Sigma) || p(pi, mu, Sigma))``, exactly.

    .. math::
        \mathrm{KL} = \log \frac{\Gamma(\sum\alpha)}{\Gamma(\sum\alpha_0)}
        - \sum_k \log \frac{\Gamma(\alpha_k)}{\Gamma(\alpha_{0k})}
        + \sum_k (\alpha_k - \alpha_{0k}) E[\log \pi_k]
        + \sum_k \Bigl[\tfrac d2 \bigl(\tfrac{\kappa_0}{\kappa_k} - 1
        - \log \tfrac{\kappa_0}{\kappa_k}\bigr)
        + \tfrac{\kappa_0}2 (m_k - m_0)^T E[\Lambda_k] (m_k - m_0)\Bigr]
        + \sum_{\text{factors}} \mathrm{KL}(q(\Sigma) \,\|\, p(\Sigma))

    (the normals' KL given the covariance, averaged over it: only ``E[Lambda_k]`` enters).

    Parameters
    ----------
    q : Variational
    prior : Prior
        The proper prior, in the data's coordinates (``q.m``'s).

    Returns
    -------
    float
    """
    fam, K, d = q.family, q.K, q.d
    alpha0 = prior.alpha_for(K)
    kl_pi = (gammaln(q.alpha.sum()) - gammaln(alpha0.sum()) - np.sum(gammaln(q.alpha) - gammaln(alpha0))
             + np.sum((q.alpha - alpha0) * q.expected_log_weights))
    ratio = prior.kappa0 / q.kappa
    dev = q.m - prior.m0
    full = fam.to_full(q.params.Sigma, K, d)
    maha = np.einsum("ki,ki->k", dev, np.linalg.solve(full, dev[:, :, None])[:, :, 0])
    kl_mu = np.sum(0.5 * d * (ratio - 1.0 - np.log(ratio)) + 0.5 * prior.kappa0 * maha)
    kl_sigma = np.sum(fam.storage.kl(q.shape, q.scale, prior))
    return float(kl_pi + kl_mu + kl_sigma)


def responsibilities(X, q):
    """``r_nk`` of rows under ``q`` (the variational ``q(z)``), and ``log sum_k rho_nk``.

    Parameters
    ----------
    X : ndarray of shape (N, d)
        Checked float32 or float64 rows.
    q : Variational

    Returns
    -------
    r : ndarray of shape (N, K)
    log_norm : ndarray of shape (N,)
    """
    from scipy.special import logsumexp

    shift = X.mean(axis=0, dtype=np.float64)
    log_rho = log_joint_rows(X, kernel(q, shift), shift, q.family.storage)
    log_norm = logsumexp(log_rho, axis=1)
    return np.exp(log_rho - log_norm[:, None]), log_norm


@dataclass(frozen=True)
class VariationalUpdate:
    """The second half of a variational iteration, for :func:`em.fit.iterate`.

    Attributes
    ----------
    family : models.Family
    prior : Prior
        In the data's coordinates.
    shift : ndarray of shape (d,)
    covariance_type : str
    """

    family: object
    prior: Prior
    shift: np.ndarray
    covariance_type: str
    prior_c: Prior = field(init=False)

    def __post_init__(self):
        object.__setattr__(self, "prior_c", self.prior.shifted(self.shift))

    def point(self, q):
        """The parameters the pass is sized by (and, with :meth:`kernel`, evaluated at)."""
        return q.params

    def kernel(self, q, shift, dtype):
        """The E-step's coefficients at ``q``."""
        return kernel(q, shift, dtype)

    def penalty(self, q):
        """What the objective adds to the pass's ``sum_n log sum_k rho_nk``: ``-KL(q || p)``."""
        return -kl(q, self.prior)

    def __call__(self, stats, q):
        """The M-step: ``q`` from the pass's statistics."""
        return posterior(stats, self.family, self.prior_c, self.shift, self.covariance_type)

    def final(self, q):
        """The state a fit returns."""
        return q


@dataclass(eq=False)
class VBResult:
    """Result of :func:`em.fit` with ``method="vb"``.

    Attributes
    ----------
    posterior : Variational
        ``q(pi) q(mu, Sigma)``.
    params : GMMParams
        The plug-in point ``(E[pi], m, E[Lambda_k]^{-1})`` (scikit-learn's ``weights_``,
        ``means_``, ``covariances_``).
    elbo : float
        The evidence lower bound at ``posterior``, exact (every constant).
    n_iter : int
    converged : bool
    history : ndarray of shape (n_iter + 1,)
        The ELBO at each ``q`` the iterations visited (it never decreases).
    n_samples : float
    prior : Prior
    weight_threshold : float
    restarts : list of float
        Final ELBO of each restart.
    """

    posterior: Variational
    elbo: float
    n_iter: int
    converged: bool
    history: np.ndarray
    n_samples: float
    prior: Prior
    weight_threshold: float = WEIGHT_THRESHOLD
    restarts: list = field(default_factory=list)
    _X: object = field(default=None, repr=False)

    @property
    def params(self):
        """The plug-in point (see the class docstring)."""
        return self.posterior.params

    @property
    def covariance_type(self):
        """Covariance type of ``params``."""
        return self.posterior.covariance_type

    @property
    def effective_n_components_(self):
        """Components whose expected weight ``E[pi_k]`` exceeds :attr:`weight_threshold`."""
        return int(np.sum(self.params.pi > self.weight_threshold))

    @cached_property
    def gamma(self):
        """``q(z_n = k)``, shape (N, K)."""
        from models.validation import iter_blocks

        return np.vstack([responsibilities(Xb, self.posterior)[0]
                          for _, Xb in iter_blocks(self._X, 1 << 16)])
