"""The EM loop: one place for iteration, convergence and restarts.

``fit`` alternates the E-step (:mod:`em.estep`) and the M-step (:mod:`em.mstep`) as the lecture's
section 2.3 describes, streaming the data in row blocks: every iteration is one pass that
accumulates the sufficient statistics and the log-likelihood, so memory is bounded by the block,
not by N.
"""

from __future__ import annotations

import functools
import warnings
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np

from em import missing as em_missing
from em.distributed import check_dask_X, column_moments, dask_missingness, dask_pass, is_dask
from em.estep import e_step
from em.init import check_init, check_init_params, initial_params
from em.mstep import DegenerateComponentError, FixableError, params_from_stats, validated
from em.variational import WEIGHT_THRESHOLD, VariationalUpdate, VBResult
from models.families import family
from models.features import (
    LINEAR,
    compiled_for,
    default_chunk,
    design_moments,
    features,
    float64_sums,
    log_joint_of,
    n_features,
    normalise,
    stats_from_moments,
)
from models.missing import scan
from models.params import GMMParams
from models.prior import Prior, check_prior
from models.seeds import seed_sequence
from models.validation import (
    BLOCK_ELEMENTS,
    BlockSource,
    check_n_components,
    check_positive,
    check_sample_weight,
    check_source,
    check_X,
    is_block_source,
    iter_blocks,
)


@dataclass(eq=False)
class EMResult:
    """Result of :func:`fit`.

    Attributes
    ----------
    params : GMMParams
        The estimate (MLE, or MAP under ``prior``).
    log_likelihood : float
        ``sum_n w_n log p(x_n)`` at ``params``.
    log_posterior : float or None
        ``log_likelihood + prior.log_density(params)``; None without a prior.
    n_iter : int
        Number of M-steps taken.
    converged : bool
    history : ndarray of shape (n_iter + 1,)
        The objective (log posterior with a prior, else log-likelihood) before each M-step and at
        the end.
    bic, aic, icl : float
        scikit-learn's sign (lower is better): ``bic = -2 log L + p log N``, ``aic = -2 log L + 2p``,
        ``icl = bic - 2 sum_n w_n log gamma_{n, argmax_k}``. mclust reports ``-bic`` and ``-icl``.
    n_samples : float
        Effective sample size ``sum_n w_n``.
    prior : Prior or None
    restarts : list of float
        Final objective of each restart (NaN for a restart that failed: it degenerated or
        collapsed).
    restart_params : list of GMMParams or None
        Final parameters of each restart (None for a restart that failed), in the order of
        ``restarts``: the local optima EM reached.
    restart_errors : list of str
        Why each restart failed, one line each ("" for a restart that did not).
    """

    params: GMMParams
    log_likelihood: float
    log_posterior: float | None
    n_iter: int
    converged: bool
    history: np.ndarray
    bic: float
    aic: float
    icl: float
    n_samples: float
    prior: Prior | None
    restarts: list = field(default_factory=list)
    restart_params: list = field(default_factory=list)
    restart_errors: list = field(default_factory=list)
    _X: object = field(default=None, repr=False)

    @cached_property
    def gamma(self):
        """Responsibilities ``gamma(z_nk)`` at ``params``, shape (N, K) (lazy for Dask input)."""
        return np.exp(e_step(self._X, self.params)[0])

    @property
    def covariance_type(self):
        """Covariance type of ``params``."""
        return self.params.covariance_type


def _column_moments(X, w, chunk, missing=None):
    """Weighted column mean and variance (of the observed cells), streamed over row blocks."""
    if is_dask(X):
        return column_moments(X, w, missing is not None)
    if missing is not None:
        return em_missing.column_moments(X, w, chunk)
    N, d = X.shape
    wsum, s = 0.0, np.zeros(d)
    for start, Xb in iter_blocks(X, chunk):
        Xb = Xb.astype(np.float64, copy=False)
        wb = None if w is None else w[start:start + chunk]
        s += Xb.sum(axis=0) if wb is None else wb @ Xb
        wsum += Xb.shape[0] if wb is None else wb.sum()
    mean = s / wsum
    v = np.zeros(d)
    for start, Xb in iter_blocks(X, chunk):
        Db = Xb.astype(np.float64, copy=False) - mean
        wb = None if w is None else w[start:start + chunk]
        v += (Db**2).sum(axis=0) if wb is None else wb @ Db**2
    return mean, v / wsum, wsum


def em_pass(X, w, shift, params, dtype, chunk, with_stats=True, XX=None, kernel=None,
            missing=None, kept=None):
    """One pass: E-step at ``params`` and the sufficient statistics for the next M-step.

    Per block: the features ``Z`` (:mod:`models.features`), the log joints ``A @ Z``, the fused
    normalisation, and the statistics ``G @ Z.T``; the buffers are reused across blocks. With
    missing cells, each block is filled first and the incomplete rows' log joints and
    statistics corrected (:mod:`em.missing`): the same kernels, plus two compiled loops over
    those rows.

    Parameters
    ----------
    X : array-like of shape (N, d)
        Data: an array, a memmap, anything sliceable by rows, or a Dask array (one task per
        block, summed by a tree reduction).
    w : ndarray of shape (N,) or None
    shift : ndarray of shape (d,)
        Centre subtracted from every block.
    params : GMMParams
    dtype : numpy dtype
        dtype of the large products (float32 or float64).
    chunk : int
        Rows per block.
    with_stats : bool
        Accumulate the sufficient statistics.
    XX : ndarray of shape (d, d) or None
        Tied only: ``sum_n w_n x_n x_n^T`` of the centred data from an earlier pass (it does
        not depend on the parameters), so this pass need not form it again.
    kernel : LogJoint or None
        The E-step kernel to use instead of ``log_joint_of(params, shift, dtype)`` (variational
        Bayes: the same features, other coefficients, :mod:`em.bayesian`).
    missing : em.missing.Missing or None
        ``X``'s missing cells (None: ``X`` has none). Only with the log joint at ``params``
        (``kernel`` None).
    kept : dict or None
        Complete data only: each block's features, kept from an earlier pass over the same
        ``X`` and ``shift`` (they do not depend on the parameters), and filled here where
        missing (None: each pass builds them in one reused buffer).

    Returns
    -------
    stats : SufficientStats or None
    log_lik : float
        ``sum_n w_n log p(x_n)``.
    hard : float
        ``sum_n w_n max_k log gamma_nk`` (for ICL).
    """
    if is_dask(X):
        return dask_pass(functools.partial(em_pass, kernel=kernel), X, w, shift, params, dtype,
                         chunk, with_stats, missing)
    kernel = log_joint_of(params, shift, dtype) if kernel is None else kernel
    fix = None if missing is None else missing.start(params, shift)
    rows = min(chunk, X.shape[0])
    p = n_features(params.d, kernel.kind)
    compiled = compiled_for(X.shape[0], p)  # one choice for every block: the same arithmetic
    Z_buf = np.empty(p * rows, dtype) if kept is None else None  # kept: each block its own
    L_buf = np.empty(params.K * rows, dtype)
    GZ = np.zeros((params.K, p + (kernel.kind == LINEAR)))  # float64 sums of the block products
    storage = params.family.storage
    tied = storage.shared        # its second moment sum_n w_n x_n x_n^T does not depend on gamma
    known = XX is not None and tied
    XX = XX if known else (np.zeros((params.d, params.d)) if tied else None)
    log_lik, hard = 0.0, 0.0
    for start, Xb in iter_blocks(X, chunk):
        if fix is not None:
            Xb = fix.fill(start, Xb)
        if kept is None:
            Z = features(Xb, shift, kernel.kind, dtype, Z_buf, compiled)
        else:
            Z = kept.get((start, kernel.kind))
            if Z is None:
                Z = kept[start, kernel.kind] = features(Xb, shift, kernel.kind, dtype,
                                                        compiled=compiled)
        G, _ = kernel(Z, L_buf, shared=False)
        if fix is not None:
            fix.correct(G)
        m, log_t = normalise(G, compiled)  # G now holds gamma; log p(x_n) = m + log_t
        wb = None if w is None else w[start:start + chunk]
        if wb is None:
            sum_m, sum_log_t = float64_sums(m, log_t, compiled)
            log_lik += sum_m + sum_log_t
            hard -= sum_log_t
        else:
            log_lik += wb @ m + wb @ log_t
            hard -= wb @ log_t
            wb = wb.astype(dtype, copy=False)
        if with_stats or (tied and not known):
            if wb is not None:
                G *= wb
            GZ_b, XX_b = design_moments(G, Z, storage, False if known else wb)
            GZ += GZ_b
            if tied and not known:
                XX += XX_b
            if fix is not None and with_stats:
                fix.accumulate(G)
    if XX is not None:  # tied: the shared term, sum_n w_n x_n^T Lambda x_n = <Lambda, XX>
        log_lik -= 0.5 * float(np.sum(kernel.Lam * XX))
    total = stats_from_moments(GZ, XX, storage) if with_stats else None
    if fix is not None and with_stats:
        total = fix.finish(total)
    return total, float(log_lik), float(hard)


@dataclass(frozen=True, eq=False)
class PointUpdate:
    """The second half of an EM iteration: the closed-form M-step, maximum likelihood or MAP.

    Every estimator's iteration is one :func:`em_pass` (the E-step and the sufficient
    statistics), then a second half that turns the statistics into the next state; this is
    EM's (:func:`em.mstep.params_from_stats`). Variational Bayes has its own
    (:class:`em.variational.VariationalUpdate`) on the same pass.

    Attributes
    ----------
    family : models.Family
    prior : Prior or None
        In the data's coordinates.
    shift : ndarray of shape (d,)
    scale : ndarray of shape (d,) or None
        Column variances for the collapse check (None: no check).
    reg_covar : float
    covariance_type : str
    """

    family: object
    prior: Prior | None
    shift: np.ndarray
    scale: np.ndarray | None
    reg_covar: float
    covariance_type: str

    @cached_property
    def prior_c(self):
        """The prior centred at ``shift``."""
        return None if self.prior is None else self.prior.shifted(self.shift)

    def point(self, params):
        """The parameters the pass is evaluated at."""
        return params

    def kernel(self, params, shift, dtype):
        """None: the pass's kernel is the log joint at ``params`` itself."""
        return None

    def penalty(self, params):
        """What the objective adds to the log-likelihood: ``log p(params)`` under a prior."""
        return 0.0 if self.prior is None else self.prior.log_density(params)

    def __call__(self, stats, params):
        """The M-step from the pass's statistics (``params`` starts the iterative ones)."""
        return params_from_stats(stats, self.family, self.prior_c, self.reg_covar, self.shift,
                                 self.scale, previous=params, validate=False,
                                 covariance_type=self.covariance_type)

    def final(self, params):
        """The estimate, through ``GMMParams``'s checks (the M-steps skipped them)."""
        return validated(params)


#: complete data in memory with at most this many feature values (about N d^2 / 2: 1 MiB) keep
#: their features between passes; larger data build them block by block in every pass, in cache
KEEP_FEATURES = 1 << 17

#: the largest relative fall of the objective between iterations put down to rounding (the
#: passes sum in float64 either way; float32 features round each row's terms at about 1e-7)
FALL = {np.dtype(np.float64): 1e-6, np.dtype(np.float32): 1e-3}


def iterate(X, w, shift, state, update, max_iter, tol, dtype, chunk, tol_per_sample=False,
            n_eff=1.0, callback=None, check_collapse=True, missing=None):
    """Iterate from ``state`` until the objective changes by at most ``tol``.

    Each iteration is the same two halves for every estimator: one :func:`em_pass` at the
    state (``update.kernel`` gives its E-step coefficients), then ``update(stats, state)``.
    The objective is the pass's value plus ``update.penalty(state)``: the log-likelihood plus
    the log prior for EM, ``sum_n log sum_k rho_nk - KL(q || p)`` for variational Bayes.

    The change is relative to the objective, or (``tol_per_sample``) the change of the objective
    per effective sample, scikit-learn's lower-bound criterion.

    Returns
    -------
    state, value, hard, history, n_iter, converged, N_k
        The final state (``update.final``), the last pass's value and ``hard`` sum, the
        objective at each state, the number of updates, whether the change fell below ``tol``,
        and the last pass's ``N_k``.
    """
    history, converged, XX = [], False, None
    fall = FALL[np.dtype(dtype)]
    shared = update.family.storage.shared
    N_k = None
    # small complete data in memory: the passes share their features (KEEP_FEATURES)
    kept = {} if (missing is None and isinstance(X, np.ndarray)
                  and X.size * (X.shape[1] + 3) // 2 <= KEEP_FEATURES) else None
    for n_iter in range(max_iter + 1):
        stats, value, hard = em_pass(X, w, shift, update.point(state), dtype, chunk, XX=XX,
                                     kernel=update.kernel(state, shift, dtype), missing=missing,
                                     kept=kept)
        N_k = stats.N_k
        if shared and not is_dask(X) and missing is None:
            XX = stats.M                  # sum_n w_n x_n x_n^T: the same in every pass
        history.append(value + update.penalty(state))
        if n_iter > 0 and check_collapse and history[-1] < history[-2] - fall * abs(history[-2]):
            # EM (and VB) never lowers its objective; a fall beyond rounding means the pass's
            # arithmetic broke down on a covariance near singular (missing cells let a component
            # fit the few complete rows it holds exactly, an unbounded likelihood)
            raise DegenerateComponentError(
                f"The objective fell at iteration {n_iter} (from {history[-2]:.10g} to "
                f"{history[-1]:.10g}): a component's covariance is numerically singular, "
                "collapsing onto a subspace.")
        if n_iter > 0:
            change = abs(history[-1] - history[-2])
            converged = (change < tol * n_eff if tol_per_sample
                         else change <= tol * abs(history[-1]))
        done = converged or n_iter == max_iter
        if callback is not None:
            callback(n_iter, history[-1], converged if done else None)
        if done:
            break
        try:
            state = update(stats, state)
        except DegenerateComponentError:
            if check_collapse:
                raise
            if callback is not None:      # scikit-learn's mode: keep the last valid iterate
                callback(n_iter, history[-1], False)
            break
    return update.final(state), value, hard, np.asarray(history), n_iter, converged, N_k


def collapse_reason(N_k, one, K, covariance_type, scale):
    """Why a fit has collapsed, and the fixes, or None when every component holds an observation.

    A component whose responsibilities sum to less than one observation's worth (``N_k < 1``
    with unit weights) is empty: the fit describes fewer than K clusters, whatever its
    objective. mclust reports no fit then; neither does :func:`fit`.

    Parameters
    ----------
    N_k : ndarray of shape (K,)
        ``sum_n w_n gamma_nk`` at the estimate.
    one : float
        One observation's worth: the mean weight (1 without weights).
    K : int
    covariance_type : str
    scale : ndarray of shape (d,)
        The columns' variances: scaling them is suggested when they differ by more than 100x.

    Returns
    -------
    (str, tuple of str) or None
        The diagnosis, one sentence, and the keys of :data:`em.mstep.FIXES` to suggest.
    """
    empty = np.flatnonzero(np.asarray(N_k) < one)
    if not len(empty):
        return None
    k = int(empty[0])
    spread = float(np.max(scale) / np.min(scale)) if np.min(scale) > 0 else 1.0
    diagnosis = (f"component {k} is empty (N_k = {float(N_k[k] / one):.2g} observations): K = {K} "
                 f"is too many for {covariance_type} here")
    if spread > 100:
        return (f"{diagnosis}, and the columns' variances differ by a factor of {spread:.2g}.",
                ("n_components", "scale"))
    return f"{diagnosis}.", ("n_components",)


def fit(X, n_components=1, covariance_type="full", prior=None, sample_weight=None,
        init="auto", n_init=5, max_iter=1000, tol=1e-10, reg_covar=0.0, random_state=0,
        dtype=None, chunk_size=None, init_subsample=None, progress=False, tol_per_sample=False,
        check_collapse=True, callback=None, method="em", weight_threshold=WEIGHT_THRESHOLD):
    """Fit a Gaussian mixture by EM (maximum likelihood, or MAP under a conjugate prior), or VB.

    Alternates ``e_step`` (responsibilities) and ``m_step`` (closed-form ``pi``, ``mu``,
    ``Sigma``) until the relative change of the objective is at most ``tol``. With
    ``method="vb"`` the same loop fits the variational posterior ``q(z) q(pi) q(mu, Sigma)``
    under ``prior`` (:mod:`em.variational`): its E-step takes expectations under ``q``, its
    M-step gives ``q``'s parameters, and its objective is the exact evidence lower bound.

    Parameters
    ----------
    X : array-like of shape (N, d), or a source of row blocks
        Data; a NumPy array, memmap or zarr array is read in row blocks of ``chunk_size``; a
        ``dask.array.Array`` is processed block by block on its scheduler (one pass per
        iteration, statistics summed by a tree reduction, the M-step on the client). NaN marks
        a value missing at random: EM then maximises the observed-data likelihood (or posterior),
        treating the missing cells as latent (:mod:`em.missing`); a row or a column with nothing
        observed is refused (variational Bayes and block sources take complete data). A source
        of row blocks (a sequence of 2-D arrays, or a callable that returns a fresh iterator
        over them, :class:`models.validation.BlockSource`) is read once to check it and count
        its rows, once to draw the initial subsample, then once per iteration: memory is one
        block's.
    n_components : int, default 1
        K, with ``1 <= K <= N``.
    covariance_type : str, default "full"
        One of :data:`models.COVARIANCE_TYPES`: mclust's 14 models or scikit-learn's names.
    prior : Prior or None, default None
        None: maximum likelihood. A :class:`models.Prior`: MAP (``Prior.flat()`` gives the MLE).
    sample_weight : array-like of shape (N,) or None
        Non-negative observation weights; integer weights equal repeated rows.
    init : {"auto", "hc", "k-means++", "kmeans", "random"}, GMMParams or list of GMMParams
        How each restart starts (:mod:`em.init`). The default ``"auto"`` starts once from mclust's
        model-based hierarchical agglomeration (``"hc"``), once from Ward's (``"ward"``) and
        ``n_init`` times from k-means++. A GMMParams
        runs once; a list runs once from each of its starting points (``n_init`` is then
        ignored).
    n_init : int, default 5
        Restarts; the best objective wins.
    max_iter : int, default 1000
    tol : float, default 1e-10
        Relative change of the objective that counts as converged (floored at float32's
        epsilon, 1.2e-7, when the products run in float32). With ``tol_per_sample``: the
        change of the objective divided by the effective sample size (scikit-learn's ``tol``,
        the change of the per-sample mean lower bound), strictly below ``tol``.
    reg_covar : float, default 0.0
        Non-negative ridge added to every covariance diagonal.
    random_state : int, numpy.random.SeedSequence, Generator or None, default 0
        Seeds the restarts: each draws from its own child of one ``SeedSequence``
        (:func:`models.seeds.seed_sequence`).
    dtype : {None, numpy.float32, numpy.float64}
        dtype of the large products; default float32 if X is float32, else float64.
    chunk_size : int or None
        Rows per block (default: the block's features take about 512 KiB, so they stay in
        cache between the E- and M-step products).
    init_subsample : int or None
        Run the initial clustering on at most this many random rows.
    progress : bool, default False
        Show a progress bar over restarts.
    tol_per_sample : bool, default False
        Read ``tol`` per sample, as scikit-learn does (see ``tol``).
    check_collapse : bool, default True
        A restart has failed when, at its end, a component holds less than one observation's
        worth of responsibility (``N_k`` below the mean weight, 1 without weights): it has
        collapsed, and the best restart that did not wins. Without a proper prior, a restart
        whose covariance becomes singular relative to the data's column variances (below 1000
        eps of them) stops and fails too. False, as scikit-learn does, keeps empty components
        and stops only when a covariance is not positive-definite, then ends that restart at
        its last valid parameters, not converged, instead of raising.
    callback : callable or None
        Called after every pass as ``callback(restart, n_iter, objective, converged)``, where
        ``n_iter`` counts the M-steps taken before the pass and ``converged`` is None while the
        restart runs, then True or False at its last pass.
    method : {"em", "vb"}, default "em"
        ``"vb"``: variational Bayes under ``prior``, a proper :class:`models.Prior`, for the
        conjugate families (EII, VII, EEI, VVI, EEE, VVV and their scikit-learn names). Each
        restart starts from the responsibilities at its initial parameters; the best ELBO wins.
        ``reg_covar`` shapes only the initial parameters, and ``check_collapse`` does not apply
        (``q``'s covariances are proper under a proper prior).
    weight_threshold : float, default 1e-3
        VB: ``effective_n_components_`` counts the components with ``E[pi_k]`` above it.

    Returns
    -------
    EMResult, or VBResult for ``method="vb"``

    Raises
    ------
    DegenerateComponentError
        (a ``ValueError``) Every restart failed: a component emptied (``N_k < 1``) or, without
        a prior, collapsed onto a point or a subspace; the one-line message says what to change.
    ValueError
        Invalid input; the message says what to change.
    """
    fam = family(covariance_type)
    if is_dask(X):
        X = check_dask_X(X, allow_nan=True)
        missingness = dask_missingness(X)
    elif is_block_source(X):
        X, missingness = check_source(X), None
    else:
        X = check_X(X, finite=False)
        missingness = scan(X)            # the one pass that finds NaN (and refuses inf)
    missing = None if missingness is None else em_missing.Missing(missingness)
    N, d = X.shape
    K = check_n_components(n_components, N)
    w = check_sample_weight(sample_weight, N)
    init = check_init(init)
    n_init = check_positive(n_init, "n_init", integer=True)
    max_iter = check_positive(max_iter, "max_iter", allow_zero=True, integer=True)
    tol = check_positive(tol, "tol", allow_zero=True)
    reg_covar = check_positive(reg_covar, "reg_covar", allow_zero=True)
    variational = _check_method(method, prior, K, d, fam, covariance_type)
    if variational and missing is not None:
        raise ValueError("method='vb' takes complete data; X has missing cells (NaN). Fit by EM "
                         "(method='em'), which treats them as latent, or drop the incomplete rows.")
    weight_threshold = check_positive(weight_threshold, "weight_threshold", allow_zero=True)
    seq = seed_sequence(random_state, "random_state")
    for start in (init if isinstance(init, list) else [init]):
        if isinstance(start, GMMParams):
            check_init_params(start, K, d, fam)
    if dtype is None:
        dtype = X.dtype
    dtype = np.dtype(dtype)
    if dtype not in (np.float32, np.float64):
        raise ValueError(f"dtype must be float32 or float64, got {dtype}.")
    # float32 products make the objective noisy at about float32 epsilon (relative).
    tol_eff = (max(tol, float(np.finfo(np.float32).eps)) if dtype == np.float32
               and not tol_per_sample else tol)
    chunk = default_chunk(K, d, fam.storage, dtype) if chunk_size is None else check_positive(
        chunk_size, "chunk_size", integer=True)
    # blocks that do not depend on K or chunk_size: the same data get the same centre, bit for
    # bit, in every fit (a model grid's fits then share one agglomeration, em.init)
    shift, scale, n_eff = _column_moments(X, w, max(BLOCK_ELEMENTS // d, 1), missing)
    shift = shift.astype(dtype).astype(np.float64)  # exact in dtype: centring rounds once
    proper = prior is not None and not prior.is_flat
    if not proper and reg_covar == 0 and np.any(scale <= 0):
        constant = [int(j) for j in np.flatnonzero(scale <= 0)]
        raise FixableError(f"Column {constant[0]} of X is constant, so every covariance is "
                           "singular in it.", ("drop_column", "prior", "reg_covar"),
                           columns=constant)
    prior_c = None if prior is None else prior.shifted(shift)
    if variational:
        update = VariationalUpdate(fam, prior, shift, covariance_type)
    else:
        update = PointUpdate(fam, prior, shift,
                             None if (proper or not check_collapse) else scale, reg_covar,
                             covariance_type)
    filled = None
    if missing is not None and not isinstance(init, list | GMMParams):
        filled = em_missing.Filled(X, shift, np.random.default_rng(seq.spawn(1)[0]))
    if isinstance(init, list | GMMParams):
        runs = init if isinstance(init, list) else [init]
    elif init == "auto":   # the agglomerations are deterministic but for a subsample's rows
        seqs = seq.spawn(n_init + 1)
        runs = [("hc", seqs[0]), ("ward", seqs[0])] + [("k-means++", s) for s in seqs[1:]]
    else:
        runs = [(init, s) for s in seq.spawn(n_init)]

    best, errors, finals, ends, reasons = None, [], [], [], []
    one = n_eff / N                       # one observation's worth of responsibility
    iterator = runs
    if progress:
        from tqdm.auto import tqdm

        iterator = tqdm(runs, desc=f"{'VB' if variational else 'EM'} K={K} {covariance_type}",
                        leave=False)
    # Restarts whose starts are the same numbers (k-means++ seeds that pick the same partition,
    # hc and Ward cutting alike: 44 % of them on 40-row data sets, 19 % in the mclust goldens)
    # run the same arithmetic, so a start met before takes its earlier run's outcome instead of
    # running again. Not with a callback, which sees every restart's passes.
    outcomes = {}
    for i, run in enumerate(iterator):
        report = None if callback is None else (lambda *a, i=i: callback(i, *a))
        try:
            start = _start(X, K, fam, run, w, prior_c, shift, init_subsample, reg_covar,
                           covariance_type, filled)
            key = None if callback is not None else _numbers(start)
            out = outcomes.get(key)
            if out is None:
                out = _restart(X, w, shift, start, update, max_iter, tol_eff, dtype, chunk,
                               tol_per_sample, n_eff, report, check_collapse, missing,
                               variational, one, K, covariance_type, scale)
                if key is not None:
                    outcomes[key] = out
            if isinstance(out, DegenerateComponentError):
                raise out
        except DegenerateComponentError as exc:
            errors.append(exc)
            finals.append(float("nan"))
            ends.append(None)
            reasons.append(str(exc).splitlines()[0])
            continue
        finals.append(float(out[3][-1]))
        ends.append(out[0])
        reasons.append("")
        if best is None or out[3][-1] > best[3][-1]:
            best = out
    if best is None:
        raise errors[-1]
    state, log_lik, hard, history, n_iter, converged, _ = best
    name = "VB" if variational else "EM"
    if not converged and max_iter > 0:
        if n_iter < max_iter:             # only check_collapse=False stops early unconverged
            why = (f"a component collapsed after {n_iter} iteration(s); {name} kept the last "
                   "valid parameters")
        else:
            change = abs(history[-1] - history[-2])
            change, what = ((change / n_eff, "change per sample") if tol_per_sample else
                            (change / abs(history[-1]), "relative change"))
            why = (f"{name} stopped at max_iter={max_iter} iterations with a {what} of "
                   f"{change:.3g} against tol={tol:g}")
        from sklearn.exceptions import ConvergenceWarning  # scikit-learn's, which its users filter

        warnings.warn(
            "Best performing initialization did not converge. Try different init parameters, "
            f"or increase max_iter, tol, or check for degenerate data. ({why}.)",
            ConvergenceWarning, stacklevel=2)
    if variational:
        return VBResult(posterior=state, elbo=float(history[-1]), n_iter=n_iter,
                        converged=converged, history=history, n_samples=float(n_eff), prior=prior,
                        weight_threshold=weight_threshold, restarts=finals, _X=X)
    params = state
    p = params.n_parameters
    bic = -2.0 * log_lik + p * np.log(n_eff)
    return EMResult(
        params=params,
        log_likelihood=log_lik,
        log_posterior=None if prior is None else log_lik + prior.log_density(params),
        n_iter=n_iter,
        converged=converged,
        history=history,
        bic=float(bic),
        aic=float(-2.0 * log_lik + 2.0 * p),
        icl=float(bic - 2.0 * hard),
        n_samples=float(n_eff),
        prior=prior,
        restarts=finals,
        restart_params=ends,
        restart_errors=reasons,
        _X=X,
    )


def _check_method(method, prior, K, d, fam, covariance_type):
    """Validate ``method`` and the prior it needs; True for variational Bayes."""
    if method not in ("em", "vb"):
        raise ValueError(f"method={method!r} is not supported; use 'em' (EM: MLE or MAP) or 'vb' "
                         "(variational Bayes).")
    if method == "em":
        check_prior(prior, K, d, fam)
        return False
    if not fam.conjugate:
        raise ValueError(
            f"method='vb' covers the conjugate families EII, VII, EEI, VVI, EEE and VVV; "
            f"covariance_type={covariance_type!r} has no conjugate prior. Use one of those, or "
            "method='em'.")
    if prior is None or (isinstance(prior, Prior) and prior.is_flat):
        raise ValueError("method='vb' needs a proper prior, e.g. "
                         f"prior=Prior.default(X, {K}, {covariance_type!r}).")
    check_prior(prior, K, d, fam, proper=True, exact=True)
    return True


def _restart(X, w, shift, start, update, max_iter, tol, dtype, chunk, tol_per_sample, n_eff,
             report, check_collapse, missing, variational, one, K, covariance_type, scale):
    """One restart from ``start``: :func:`iterate`'s outcome, or the error that ended it.

    The DegenerateComponentError is returned, not raised, so that a restart from the same numbers
    can raise it again.
    """
    try:
        if variational:   # q from the responsibilities at the initial parameters
            start = update(em_pass(X, w, shift, start, dtype, chunk)[0], None)
        out = iterate(X, w, shift, start, update, max_iter, tol, dtype, chunk, tol_per_sample,
                      n_eff, report, check_collapse, missing)
    except DegenerateComponentError as exc:
        return exc
    # a point estimate with an empty component describes fewer than K clusters; VB empties
    # components on purpose (effective_n_components_)
    why = (None if variational or not check_collapse else
           collapse_reason(out[6], one, K, covariance_type, scale))
    return out if why is None else DegenerateComponentError(*why)


def _numbers(params):
    """The bytes of a start's ``pi``, ``mu`` and ``Sigma``: equal for starts EM treats alike."""
    return b"".join(np.ascontiguousarray(a, dtype=np.float64).tobytes()
                    for a in (params.pi, params.mu, params.Sigma))


def _start(X, K, fam, run, w, prior_c, shift, init_subsample, reg_covar, covariance_type,
           filled=None):
    """Initial parameters of one restart (``run`` is a GMMParams or a (method, SeedSequence) pair).

    ``filled`` (:class:`em.missing.Filled`): the centred data with missing cells filled, for the
    starts' clustering.
    """
    if isinstance(run, GMMParams):
        return run
    init, seed = run
    if init_subsample is None and (is_dask(X) or isinstance(X, BlockSource)
                                   or X.shape[0] * X.shape[1] > 4 * BLOCK_ELEMENTS):
        init_subsample = max(10 * K, 4 * BLOCK_ELEMENTS // X.shape[1])
    if init_subsample is not None and init_subsample < X.shape[0]:
        Xc = _Centred(X, shift) if filled is None else filled
    elif filled is not None:
        Xc, init_subsample = filled.all(), None
    else:
        Xc, init_subsample = np.asarray(X, np.float64) - shift, None
    return initial_params(Xc, K, fam, init, w, seed, prior_c, shift, init_subsample, reg_covar,
                          covariance_type)


class _Centred:
    """Row-indexable view of ``X - shift`` that copies only the rows taken."""

    def __init__(self, X, shift):
        self.X, self.shift = X, shift
        self.shape = X.shape

    def __getitem__(self, idx):
        return np.asarray(self.X[idx], dtype=np.float64) - self.shift
