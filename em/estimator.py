"""A scikit-learn estimator over :func:`em.fit`, with scikit-learn's attribute names."""

from __future__ import annotations

import numpy as np
from sklearn.base import BaseEstimator, DensityMixin
from sklearn.utils.validation import check_is_fitted, validate_data

from em.estep import e_step
from em.fit import fit
from models import simulate


class GaussianMixture(DensityMixin, BaseEstimator):
    """Gaussian mixture fitted by EM, a drop-in for ``sklearn.mixture.GaussianMixture``.

    Parameters
    ----------
    n_components : int, default 1
    covariance_type : {"full", "tied", "diag", "spherical"}, default "full"
    tol : float, default 1e-3
        Relative change of the objective that counts as converged.
    reg_covar : float, default 1e-6
        Ridge added to covariance diagonals (scikit-learn's default).
    max_iter : int, default 100
    n_init : int, default 1
    init_params : {"k-means++", "kmeans", "random"}, default "k-means++"
    prior : models.Prior or None, default None
        A conjugate prior: the fit is then the MAP estimate.
    random_state : int, Generator or None, default None

    Attributes
    ----------
    weights_ : ndarray of shape (K,)
    means_ : ndarray of shape (K, d)
    covariances_ : ndarray
        scikit-learn's shapes per covariance type.
    params_ : models.GMMParams
    converged_ : bool
    n_iter_ : int
    lower_bound_ : float
        Final objective (average log-likelihood per sample, as in scikit-learn).
    n_features_in_ : int
    labels_ : ndarray of shape (n_samples,)
        Most responsible component of each training sample.
    """

    def __init__(self, n_components=1, *, covariance_type="full", tol=1e-3, reg_covar=1e-6,
                 max_iter=100, n_init=1, init_params="k-means++", prior=None, random_state=None):
        self.n_components = n_components
        self.covariance_type = covariance_type
        self.tol = tol
        self.reg_covar = reg_covar
        self.max_iter = max_iter
        self.n_init = n_init
        self.init_params = init_params
        self.prior = prior
        self.random_state = random_state

    def fit(self, X, y=None, sample_weight=None):
        """Estimate the mixture by EM.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : ignored
        sample_weight : array-like of shape (n_samples,) or None

        Returns
        -------
        self
        """
        X = validate_data(self, X, dtype=[np.float64, np.float32], ensure_min_samples=2)
        seed = self.random_state
        if isinstance(seed, np.random.RandomState):
            seed = int(seed.randint(2**31 - 1))
        res = fit(X, n_components=self.n_components, covariance_type=self.covariance_type,
                  prior=self.prior, sample_weight=sample_weight, init=self.init_params,
                  n_init=self.n_init, max_iter=self.max_iter, tol=self.tol,
                  reg_covar=self.reg_covar, random_state=seed)
        self.result_ = res
        self.params_ = res.params
        self.weights_ = np.array(res.params.pi)
        self.means_ = np.array(res.params.mu)
        self.covariances_ = np.array(res.params.Sigma)
        self.converged_ = res.converged
        self.n_iter_ = res.n_iter
        self.lower_bound_ = res.history[-1] / res.n_samples
        self.labels_ = res.gamma.argmax(axis=1)
        return self

    def fit_predict(self, X, y=None, sample_weight=None):
        """Fit and return the most responsible component of each sample.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : ignored
        sample_weight : array-like of shape (n_samples,) or None

        Returns
        -------
        labels : ndarray of shape (n_samples,)
        """
        return self.fit(X, sample_weight=sample_weight).labels_

    def _e_step(self, X):
        check_is_fitted(self)
        X = validate_data(self, X, dtype=[np.float64, np.float32], reset=False)
        return e_step(X, self.params_)

    def predict_proba(self, X):
        """Responsibilities ``gamma(z_nk)``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        ndarray of shape (n_samples, n_components)
        """
        return np.exp(self._e_step(X)[0])

    def predict(self, X):
        """Most responsible component of each sample.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        ndarray of int, shape (n_samples,)
        """
        return self._e_step(X)[0].argmax(axis=1)

    def score_samples(self, X):
        """Log density ``log p(x_n)`` of each sample.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        ndarray of shape (n_samples,)
        """
        return self._e_step(X)[1]

    def score(self, X, y=None):
        """Average log-likelihood per sample.

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
        """Draw samples from the fitted mixture.

        Parameters
        ----------
        n_samples : int, default 1

        Returns
        -------
        X : ndarray of shape (n_samples, n_features)
        z : ndarray of shape (n_samples,)
        """
        check_is_fitted(self)
        seed = self.random_state
        if isinstance(seed, np.random.RandomState):
            seed = int(seed.randint(2**31 - 1))
        return simulate(self.params_, n_samples, rng=seed)

    def bic(self, X):
        """Bayesian information criterion on ``X`` (lower is better).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        float
        """
        n = np.asarray(X).shape[0]
        return -2 * self.score(X) * n + self.params_.n_parameters * np.log(n)

    def aic(self, X):
        """Akaike information criterion on ``X`` (lower is better).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        float
        """
        n = np.asarray(X).shape[0]
        return -2 * self.score(X) * n + 2 * self.params_.n_parameters
