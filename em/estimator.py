"""``em.GaussianMixture``: scikit-learn's estimator, with its constructor and meanings, over :func:`em.fit`.

scikit-learn's own test module for ``GaussianMixture`` runs against this class
(``tests/em/test_sklearn_suite.py``). What this class adds to the loop in :mod:`em.fit` is
scikit-learn's way of starting it: the four ``init_params`` schemes drawn from a
``RandomState``, ``weights_init``/``means_init``/``precisions_init``, and ``warm_start``.
"""

from __future__ import annotations

import time
from numbers import Integral

import numpy as np
from sklearn.base import BaseEstimator, DensityMixin
from sklearn.cluster import KMeans, kmeans_plusplus
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_array, check_is_fitted, validate_data

from em.estep import e_step
from em.fit import em_pass, fit
from em.mstep import DegenerateComponentError, m_step, params_from_stats
from em.online import RunningStats, check_schedule
from models.families import family
from models.features import default_chunk
from models.missing import fill_conditional, observed_moments
from models.params import GMMParams
from models.prior import check_prior
from models.simulation import draw_given_z
from models.validation import check_positive, check_sample_weight

INIT_PARAMS = ("kmeans", "k-means++", "random", "random_from_data")

_REGULARISE = (
    "Fitting the mixture model failed because some components have ill-defined empirical "
    "covariance (for instance caused by singleton or collapsed samples). Try to decrease the "
    "number of components, increase reg_covar, or scale the input data."
)


def _check_shape(value, shape, name):
    if value.shape != shape:
        raise ValueError(f"The parameter '{name}' should have the shape of {shape}, but got "
                         f"{value.shape}; pass an array of shape {shape}.")


def check_weights(weights, K):
    """Validate ``weights_init``: shape (K,), on the simplex.

    Parameters
    ----------
    weights : array-like of shape (K,)
    K : int

    Returns
    -------
    ndarray of shape (K,)
    """
    weights = check_array(weights, dtype=[np.float64, np.float32], ensure_2d=False)
    _check_shape(weights, (K,), "weights")
    if np.any(weights < 0) or np.any(weights > 1):
        raise ValueError(f"The parameter 'weights' should be in the range [0, 1], but got min "
                         f"value {weights.min():.5f}, max value {weights.max():.5f}.")
    atol = 1e-6 if weights.dtype == np.float32 else 1e-8
    if abs(1.0 - float(weights.sum())) > atol:
        raise ValueError(f"The parameter 'weights' should be normalized, but got sum(weights) = "
                         f"{weights.sum():.5f}; divide it by its sum.")
    return weights


def check_means(means, K, d):
    """Validate ``means_init``: shape (K, d).

    Parameters
    ----------
    means : array-like of shape (K, d)
    K, d : int

    Returns
    -------
    ndarray of shape (K, d)
    """
    means = check_array(means, dtype=[np.float64, np.float32], ensure_2d=False)
    _check_shape(means, (K, d), "means")
    return means


def check_precisions(precisions, covariance_type, K, d):
    """Validate ``precisions_init`` for a covariance type: its shape, and positive (definite).

    Parameters
    ----------
    precisions : array-like
        (K, d, d) full, (d, d) tied, (K, d) diag, (K,) spherical.
    covariance_type : {"full", "tied", "diag", "spherical"}
    K, d : int

    Returns
    -------
    ndarray
    """
    storage = family(covariance_type).storage
    shape = storage.shape(K, d)
    precisions = check_array(precisions, dtype=[np.float64, np.float32], ensure_2d=False,
                             allow_nd=len(shape) > 2)
    _check_shape(precisions, shape, f"{covariance_type} precision")
    storage.check_precisions(precisions, f"{covariance_type} precision")
    return precisions


def initial_resp(X, K, init_params, random_state):
    """scikit-learn's initial responsibilities, drawn from ``random_state`` as it draws them.

    Parameters
    ----------
    X : ndarray of shape (N, d)
    K : int
    init_params : {"kmeans", "k-means++", "random", "random_from_data"}
    random_state : numpy.random.RandomState

    Returns
    -------
    ndarray of shape (N, K), dtype of ``X``
        k-means labels one-hot; uniform draws normalised per row; or one 1 per column at K
        rows (k-means++ seeds, or K rows drawn without replacement).
    """
    N = X.shape[0]
    resp = np.zeros((N, K), dtype=X.dtype)
    if init_params == "kmeans":
        labels = KMeans(n_clusters=K, n_init=1, random_state=random_state).fit(X).labels_
        resp[np.arange(N), labels] = 1
    elif init_params == "random":
        resp = random_state.uniform(size=(N, K)).astype(X.dtype, copy=False)
        resp /= resp.sum(axis=1, keepdims=True)
    elif init_params == "random_from_data":
        resp[random_state.choice(N, size=K, replace=False), np.arange(K)] = 1
    else:
        _, idx = kmeans_plusplus(X, K, random_state=random_state)
        resp[idx, np.arange(K)] = 1
    return resp


def sample_mixture(params, n_samples, random_state):
    """``n_samples`` draws from the mixture ``params``, grouped by component (scikit-learn's ``sample``).

    Parameters
    ----------
    params : GMMParams
    n_samples : int
        At least 1; anything else is refused in scikit-learn's words.
    random_state : None, int or numpy.random.RandomState

    Returns
    -------
    X : ndarray of shape (n_samples, d)
    y : ndarray of int, shape (n_samples,)
    """
    if isinstance(n_samples, bool) or not isinstance(n_samples, Integral) or n_samples < 1:
        raise ValueError(f"Invalid value for 'n_samples': {n_samples!r}. The sampling "
                         "requires at least one sample.")
    rs = check_random_state(random_state)
    y = np.repeat(np.arange(params.K), rs.multinomial(n_samples, params.pi))
    return draw_given_z(params, y, rs), y


def precision_cholesky(params):
    """scikit-learn's ``precisions_cholesky_``: ``P_k`` with ``Sigma_k^{-1} = P_k P_k^T``.

    Parameters
    ----------
    params : GMMParams

    Returns
    -------
    ndarray
        (K, d, d) full (``L_k^{-T}``), (d, d) tied, (K, d) diag or (K,) spherical
        (``1 / sqrt(Sigma)``).
    """
    return params.family.storage.precision_cholesky(params.Sigma, params.cholesky)


class GaussianMixture(DensityMixin, BaseEstimator):
    """Gaussian mixture fitted by EM: a drop-in for ``sklearn.mixture.GaussianMixture``.

    The constructor, the fitted attributes and the methods are scikit-learn's, with their
    meanings; the EM loop is :func:`em.fit`. Unlike scikit-learn's, ``fit``, ``predict``,
    ``predict_proba``, ``score_samples`` and ``score`` take NaN as a value missing at random
    (:mod:`em.missing`): the fit maximises the observed-data likelihood, and a prediction uses
    each row's observed features. The starts' initial responsibilities come from the data
    with each missing cell at its conditional mean under one Gaussian.

    Parameters
    ----------
    n_components : int, default 1
    covariance_type : {"full", "tied", "diag", "spherical"}, default "full"
    tol : float, default 1e-3
        Convergence threshold on the change of the per-sample mean log-likelihood (the lower
        bound, or the log posterior per sample under ``prior``) between iterations.
    reg_covar : float, default 1e-6
        Non-negative ridge added to every covariance diagonal.
    max_iter : int, default 100
        EM iterations per initialisation (0 returns the initialisation).
    n_init : int, default 1
        Initialisations; the best lower bound wins.
    init_params : {"kmeans", "k-means++", "random", "random_from_data"}, default "kmeans"
        Initial responsibilities: k-means labels, the k-means++ seeds, uniform random
        responsibilities, or K random observations.
    weights_init : array-like of shape (n_components,) or None
    means_init : array-like of shape (n_components, n_features) or None
    precisions_init : array-like or None
        Inverse covariances, of scikit-learn's shape for ``covariance_type``.
    random_state : int, RandomState or None, default None
    warm_start : bool, default False
        Start each ``fit`` from the last solution (``n_init`` is then 1).
    verbose : int, default 0
        1 prints each initialisation and iteration; 2 adds timings and changes.
    verbose_interval : int, default 10
        Iterations between messages.
    prior : models.Prior or None, default None
        A conjugate prior: the fit is then the MAP estimate (an extension of scikit-learn's
        constructor).
    learning_decay, learning_offset : float, default 1.0 and 0.0
        :meth:`partial_fit`'s step sizes ``rho_t = (t + learning_offset)^(-learning_decay)``
        (:mod:`em.online`), ``learning_decay`` in (0.5, 1]. The defaults average the blocks after
        the first (which starts the fit) equally; a smaller decay forgets early blocks faster.

    Attributes
    ----------
    weights_ : ndarray of shape (n_components,)
    means_ : ndarray of shape (n_components, n_features)
    covariances_ : ndarray
        (K, d, d) full, (d, d) tied, (K, d) diag, (K,) spherical.
    precisions_ : ndarray
        Inverses of ``covariances_``, same shape.
    precisions_cholesky_ : ndarray
        Cholesky factors of ``precisions_`` (see :func:`precision_cholesky`).
    converged_ : bool
    n_iter_ : int
        M-steps of the best initialisation. Often one fewer than scikit-learn's: its lower
        bound is evaluated before each M-step, so it takes one more M-step after the change
        falls below ``tol``. Here the bound belongs to the returned parameters.
    lower_bound_ : float
        Per-sample mean log-likelihood (log posterior under a prior) at the fitted parameters.
    lower_bounds_ : list of float
        ``lower_bound_`` after each M-step of the best initialisation.
    n_features_in_ : int
    feature_names_in_ : ndarray of str
        Only when ``X`` has string column names (a pandas DataFrame).
    params_ : models.GMMParams
        The fit in float64, as the rest of the suite takes it.
    n_samples_seen_ : float
        After :meth:`partial_fit`: the rows (weights) it has seen.
    """

    def __init__(self, n_components=1, *, covariance_type="full", tol=1e-3, reg_covar=1e-6,
                 max_iter=100, n_init=1, init_params="kmeans", weights_init=None, means_init=None,
                 precisions_init=None, random_state=None, warm_start=False, verbose=0,
                 verbose_interval=10, prior=None, learning_decay=1.0, learning_offset=0.0):
        self.n_components = n_components
        self.covariance_type = covariance_type
        self.tol = tol
        self.reg_covar = reg_covar
        self.max_iter = max_iter
        self.n_init = n_init
        self.init_params = init_params
        self.weights_init = weights_init
        self.means_init = means_init
        self.precisions_init = precisions_init
        self.random_state = random_state
        self.warm_start = warm_start
        self.verbose = verbose
        self.verbose_interval = verbose_interval
        self.prior = prior
        self.learning_decay = learning_decay
        self.learning_offset = learning_offset

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True      # NaN is a missing value (em.missing)
        return tags

    # -- checks -----------------------------------------------------------------------------
    def _check_settings(self):
        for name in ("n_components", "n_init", "verbose_interval"):
            check_positive(getattr(self, name), name, integer=True)
        for name in ("max_iter", "verbose"):
            check_positive(getattr(self, name), name, allow_zero=True, integer=True)
        for name in ("tol", "reg_covar"):
            check_positive(getattr(self, name), name, allow_zero=True)
        fam = family(self.covariance_type)
        if self.init_params not in INIT_PARAMS:
            raise ValueError(f"init_params={self.init_params!r} is not supported; use one of "
                             f"{', '.join(map(repr, INIT_PARAMS))}.")
        return fam

    # -- initialisation ---------------------------------------------------------------------
    def _start(self, X, rs, given):
        """One initial GMMParams: the M-step of the initial responsibilities, then the given parts."""
        weights, means, precisions = given
        if weights is not None and means is not None and precisions is not None:
            pi, mu = weights, means            # all given: nothing to estimate
        else:
            p = m_step(X, initial_resp(X, self.n_components, self.init_params, rs),
                       self.covariance_type, reg_covar=self.reg_covar)
            pi = p.pi if weights is None else weights
            mu = p.mu if means is None else means
            Sigma = p.Sigma
        if precisions is not None:
            Sigma = family(self.covariance_type).storage.from_precisions(precisions)
        pi = np.asarray(pi, np.float64)    # validated to float32's 1e-6: renormalise in float64
        return GMMParams(pi / pi.sum(), np.asarray(mu, np.float64), Sigma, self.covariance_type)

    # -- fitting ----------------------------------------------------------------------------
    def fit(self, X, y=None, sample_weight=None):
        """Estimate the mixture by EM, keeping the best of ``n_init`` initialisations.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : ignored
        sample_weight : array-like of shape (n_samples,) or None
            Non-negative weights (integer weights equal repeated rows); an extension of
            scikit-learn's ``fit``.

        Returns
        -------
        self
        """
        self.fit_predict(X, y, sample_weight=sample_weight)
        return self

    def fit_predict(self, X, y=None, sample_weight=None):
        """Fit, then return the most responsible component of each sample.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : ignored
        sample_weight : array-like of shape (n_samples,) or None

        Returns
        -------
        labels : ndarray of shape (n_samples,)
        """
        fam = self._check_settings()
        warm = self.warm_start and hasattr(self, "converged_")
        self._online = None              # partial_fit's running statistics start afresh
        X = validate_data(self, X, dtype=[np.float64, np.float32], ensure_min_samples=2,
                          ensure_all_finite="allow-nan")
        K, (N, d) = self.n_components, X.shape
        check_prior(self.prior, K, d, fam)
        if N < K:
            raise ValueError(f"Expected n_samples >= n_components but got n_components = {K}, "
                             f"n_samples = {N}; lower n_components or add data.")
        given = (None if self.weights_init is None else check_weights(self.weights_init, K),
                 None if self.means_init is None else check_means(self.means_init, K, d),
                 None if self.precisions_init is None else
                 check_precisions(self.precisions_init, self.covariance_type, K, d))
        sample_weight = check_sample_weight(sample_weight, N)
        rs = check_random_state(self.random_state)
        X64 = X.astype(np.float64, copy=False)
        if np.isnan(X64).any():            # the starts cluster rows filled by one Gaussian
            X64 = fill_conditional(X64, *observed_moments(X64))
        try:
            starts = ([self.params_] if warm else
                      [self._start(X64, rs, given) for _ in range(self.n_init)])
            n_eff = float(N if sample_weight is None else sample_weight.sum())
            res = fit(X, K, self.covariance_type, prior=self.prior, sample_weight=sample_weight,
                      init=starts, max_iter=self.max_iter, tol=self.tol, reg_covar=self.reg_covar,
                      tol_per_sample=True, check_collapse=False,
                      callback=self._printer(n_eff) if self.verbose else None)
        except DegenerateComponentError as exc:
            raise ValueError(f"{_REGULARISE} ({exc})") from None
        self._set_params(res.params, X.dtype)
        self.converged_ = res.converged
        self.n_iter_ = res.n_iter
        self.lower_bounds_ = list(res.history[1:] / res.n_samples)
        self.lower_bound_ = float(res.history[-1] / res.n_samples)
        return res.gamma.argmax(axis=1)

    def partial_fit(self, X, y=None, sample_weight=None):
        """One step of online EM on a block of rows (Cappé & Moulines 2009, :mod:`em.online`).

        The first call on an unfitted estimator fits the block by EM (as :meth:`fit`); each
        later call computes the block's statistics at the current parameters, averages them into
        the running statistics with weight ``(t + learning_offset)^(-learning_decay)``, and
        takes the M-step. One pass of calls over a stream needs memory for one block only.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : ignored
        sample_weight : array-like of shape (n_samples,) or None

        Returns
        -------
        self
        """
        kappa, tau0 = check_schedule(self.learning_decay, self.learning_offset)
        if not hasattr(self, "params_"):
            self.fit(X, sample_weight=sample_weight)
            X = validate_data(self, X, dtype=[np.float64, np.float32], reset=False)
            w = check_sample_weight(sample_weight, X.shape[0])
            stats, n_rows = self._block_stats(X, w, X.mean(axis=0, dtype=np.float64))
            self._online = RunningStats.start(stats, n_rows, X.mean(axis=0, dtype=np.float64))
            self.n_samples_seen_ = self._online.n_seen
            return self
        X = validate_data(self, X, dtype=[np.float64, np.float32], reset=False)
        w = check_sample_weight(sample_weight, X.shape[0])
        online = getattr(self, "_online", None)
        stats, n_rows = self._block_stats(X, w, X.mean(axis=0, dtype=np.float64)
                                          if online is None else online.shift)
        if online is None:          # fitted by fit(): the running statistics start here
            online = self._online = RunningStats.start(stats, n_rows,
                                                       X.mean(axis=0, dtype=np.float64))
        else:
            online.add(stats, n_rows, kappa, tau0)
        fam = family(self.covariance_type)
        prior = None if self.prior is None else self.prior.shifted(online.shift)
        try:
            params = params_from_stats(online.total(), fam, prior, self.reg_covar, online.shift,
                                       previous=self.params_, covariance_type=self.covariance_type)
        except DegenerateComponentError as exc:
            raise ValueError(f"{_REGULARISE} ({exc})") from None
        self._set_params(params, X.dtype)
        self.n_samples_seen_ = online.n_seen
        return self

    def _block_stats(self, X, w, shift):
        """Statistics of a block's responsibilities at ``params_``, and its (weighted) rows."""
        chunk = default_chunk(self.n_components, X.shape[1], self.params_.family.storage, X.dtype)
        stats, _, _ = em_pass(X, w, shift, self.params_, X.dtype, chunk)
        return stats, float(X.shape[0] if w is None else w.sum())

    def _set_params(self, params, dtype):
        self.params_ = params
        self.weights_ = params.pi.astype(dtype)
        self.means_ = params.mu.astype(dtype)
        self.covariances_ = params.Sigma.astype(dtype)
        self.precisions_ = params.family.storage.precisions(params.Sigma).astype(dtype)
        self.precisions_cholesky_ = precision_cholesky(params).astype(dtype)

    def _printer(self, n_eff):
        """scikit-learn's progress messages, as a callback for :func:`em.fit`."""
        clock = {}

        def show(restart, n_iter, objective, converged):
            now = time.perf_counter()
            if n_iter == 0:
                print(f"Initialization {restart}")
                clock.update(start=now, iteration=now)
            elif n_iter % self.verbose_interval == 0:
                if self.verbose >= 2:
                    print(f"  Iteration {n_iter}\t time lapse {now - clock['iteration']:.5f}s\t "
                          f"ll change {(objective - clock['last']) / n_eff:.5f}")
                else:
                    print(f"  Iteration {n_iter}")
                clock["iteration"] = now
            clock["last"] = objective
            if converged is not None:
                state = "converged" if converged else "did not converge"
                if self.verbose >= 2:
                    print(f"Initialization {state}. time lapse {now - clock['start']:.5f}s\t "
                          f"lower bound {objective / n_eff:.5f}.")
                else:
                    print(f"Initialization {state}.")

        return show

    # -- prediction -------------------------------------------------------------------------
    def _params(self):
        """The fitted mixture as GMMParams, from the public attributes (which a user may set)."""
        check_is_fitted(self)
        pi = np.asarray(self.weights_, np.float64)
        if abs(pi.sum() - 1.0) <= 1e-6:     # float32 weights sum to 1 within float32's epsilon
            pi = pi / pi.sum()
        return GMMParams(pi, np.asarray(self.means_, np.float64),
                         np.asarray(self.covariances_, np.float64), self.covariance_type)

    def _e_step(self, X):
        params = self._params()
        X = validate_data(self, X, dtype=[np.float64, np.float32], reset=False,
                          ensure_all_finite="allow-nan")
        log_gamma, log_lik = e_step(X, params)
        return log_gamma.astype(X.dtype), log_lik.astype(X.dtype)

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
        """Per-sample mean log-likelihood.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : ignored

        Returns
        -------
        float
        """
        return self.score_samples(X).mean()

    def sample(self, n_samples=1):
        """Draw from the fitted mixture, grouped by component as scikit-learn returns them.

        Parameters
        ----------
        n_samples : int, default 1

        Returns
        -------
        X : ndarray of shape (n_samples, n_features)
        y : ndarray of int, shape (n_samples,)
            Component of each draw.
        """
        X, y = sample_mixture(self._params(), n_samples, self.random_state)
        return X.astype(self.means_.dtype), y

    def _n_parameters(self):
        """Free parameters of the model (scikit-learn's private name, kept for its tests)."""
        return self._params().n_parameters

    def bic(self, X):
        """Bayesian information criterion on ``X``: ``-2 log L + p log N`` (lower is better).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        float
        """
        n = _n_rows(X)
        return -2 * self.score(X) * n + self._n_parameters() * np.log(n)

    def aic(self, X):
        """Akaike information criterion on ``X``: ``-2 log L + 2 p`` (lower is better).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        float
        """
        return -2 * self.score(X) * _n_rows(X) + 2 * self._n_parameters()


def _n_rows(X):
    return X.shape[0] if hasattr(X, "shape") else len(X)
