"""The JAX routes: numpyro's and blackjax's NUTS on the model's log density, the data an argument.

PyMC's own JAX samplers (``pm.sample(nuts_sampler="numpyro")``) bake the observed data into the
compiled program as a constant, so every new data set compiles afresh, in the process and in
JAX's on-disk cache. Here the log density is ``logp(X, w, *u)``, with the data ``X`` and the rows'
weights ``w`` arguments of the compiled program. blackjax's route pads the rows to a bucket of N
(:func:`bucket`, weight 0), so one compilation per model structure (K, d, covariance type,
prior), N bucket and number of chains serves every data set of those sizes, whatever draws and
tune are; :func:`sample_blackjax_batch` runs many data sets' chains in one program
(simulation-based calibration).

:mod:`models.pymc.sampling` imports this module only when a JAX route is asked for.
"""

from __future__ import annotations

import hashlib
import os
import sys
import tempfile
from dataclasses import dataclass
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
import pytensor.tensor as pt
from pymc.sampling.jax import get_jaxified_graph
from pymc.util import get_default_varnames
from pytensor.graph.replace import clone_replace

from models.pymc.model import structure_digest

jax.config.update("jax_enable_x64", True)

with open(__file__, "rb") as _fh:
    _SOURCE = hashlib.sha1(_fh.read()).hexdigest()

#: the per-draw sampler statistics both routes return (PyMC's names)
STATS = ("diverging", "energy", "tree_depth", "n_steps", "acceptance_rate", "lp", "step_size")


@dataclass(frozen=True)
class JaxModel:
    """The model's log density and transforms as JAX functions (see :func:`jax_model`).

    Attributes
    ----------
    names : tuple of str
        The free value variables (unconstrained), e.g. ``("pi_simplex__", "Sigma_...", "mu")``.
    logp : callable
        ``logp(X, w, *u)``: the log posterior density (up to a constant) at the unconstrained
        values ``u``, each row of the data ``X`` (N, d) weighted by ``w`` (N,); weight 0 pads.
    constrain : callable
        ``constrain(*u)``: the model's named variables (``outputs``) from the unconstrained values.
    outputs : tuple of str
        Names of what :attr:`constrain` returns (``pi``, ``mu``, ``Sigma``, ...).
    unconstrain : callable
        ``unconstrain(*values)``: the unconstrained values from the free variables' values.
    fingerprint : str
        :func:`models.pymc.model.structure_digest` (the log density's graph, so the prior's
        numbers too, and PyMC's versions) with JAX's and blackjax's versions: what a compiled
        program depends on.
    """

    names: tuple
    logp: object
    constrain: object
    outputs: tuple
    unconstrain: object
    fingerprint: str


def jax_model(model):
    """The JAX functions of a model built by :func:`models.pymc.build_model`, made once per model.

    Parameters
    ----------
    model : pymc.Model
        With the data in ``pm.Data("X_data")``.

    Returns
    -------
    JaxModel
    """
    cached = model.gmm_spec.get("jax")
    if cached is not None:
        return cached
    X_shared = model["X_data"]
    X_in = X_shared.type("X")
    w_in = pt.vector("w", dtype="float64")
    # the prior (with the transforms' Jacobians) plus each observation's term times its weight:
    # weight-0 rows pad the data to a bucket of N, so one program serves nearby N too
    x_terms = model.logp(vars=[model["x"]], sum=False)[0]               # (N,)
    weighted = model.logp(vars=model.free_RVs) + (w_in * x_terms).sum()
    (logp,) = clone_replace([weighted], replace={X_shared: X_in})
    value_vars = [model.rvs_to_values[rv] for rv in model.free_RVs]
    logp_fn = get_jaxified_graph(inputs=[X_in, w_in, *value_vars], outputs=[logp])
    outputs = list(get_default_varnames(model.unobserved_value_vars, include_transformed=False))
    constrain_fn = get_jaxified_graph(inputs=value_vars, outputs=outputs)
    constrained = [rv.type(rv.name) for rv in model.free_RVs]
    forward = [
        model.rvs_to_transforms[rv].forward(c) if model.rvs_to_transforms.get(rv) else c
        for rv, c in zip(model.free_RVs, constrained)
    ]
    unconstrain_fn = get_jaxified_graph(inputs=constrained, outputs=[pt.as_tensor(f) for f in forward])
    # each jitted: called outside a compiled program (numpyro's start, the chains' start points),
    # a JAX function runs op by op and XLA compiles every op on its own (420 programs, 9 s of a
    # fresh machine's first numpyro run); inside one, a jitted function is inlined
    jm = JaxModel(
        names=tuple(v.name for v in value_vars),
        logp=jax.jit(lambda X, w, *u: logp_fn(X, w, *u)[0]),
        constrain=jax.jit(constrain_fn),
        outputs=tuple(v.name for v in outputs),
        unconstrain=jax.jit(unconstrain_fn),
        fingerprint=_fingerprint(model),
    )
    model.gmm_spec["jax"] = jm
    return jm


def _fingerprint(model):
    """The model's structure digest and the JAX libraries' versions."""
    import blackjax

    versions = f"jax={jax.__version__};blackjax={blackjax.__version__};"
    return hashlib.sha1((structure_digest(model) + versions).encode()).hexdigest()


def unconstrained_starts(model, starts):
    """Stack the chains' start points (dicts of free-variable values) as unconstrained arrays.

    Parameters
    ----------
    model : pymc.Model
    starts : list of dict
        One per chain, keyed by the free variables' names (:func:`models.pymc.params_to_point`).

    Returns
    -------
    list of ndarray
        Per value variable, shape (chains, ...).
    """
    jm = jax_model(model)
    per_chain = [jm.unconstrain(*(np.asarray(s[rv.name], dtype=np.float64)
                                  for rv in model.free_RVs)) for s in starts]
    return [np.stack([np.asarray(c[i]) for c in per_chain]) for i in range(len(jm.names))]


def _constrain_draws(jm, samples):
    """Constrained draws, each of shape (..., chain, draw, ...), from unconstrained ones."""
    fn = jm.constrain
    for _ in range(samples[0].ndim - 1):   # the first, pi's simplex value, has one core dimension
        fn = jax.vmap(fn)
    return dict(zip(jm.outputs, (np.asarray(v) for v in jax.jit(fn)(*samples))))


# --- numpyro -------------------------------------------------------------------------------
def sample_numpyro(model, X, starts, draws, tune, seed, target_accept, progressbar):
    """Numpyro's NUTS, every chain in one vectorised program, the data a traced argument.

    The ``MCMC`` object is kept on the model, so a second call with new data of the same shape
    (and the same draws, tune and chains) reuses its compiled program.

    Parameters
    ----------
    model : pymc.Model
    X : ndarray of shape (N, d)
    starts : list of dict
        One start point per chain.
    draws, tune : int
    seed : int
    target_accept : float
    progressbar : bool

    Returns
    -------
    posterior : dict of ndarray
        The constrained draws, each (chain, draw, ...).
    stats : dict of ndarray
        :data:`STATS`, each (chain, draw).
    """
    import numpyro
    import numpyro.distributions as dist
    from numpyro.infer import MCMC, NUTS

    jm = jax_model(model)
    init = unconstrained_starts(model, starts)
    chains = len(starts)
    runs = model.gmm_spec.setdefault("numpyro", {})
    key_ = (draws, tune, chains, float(target_accept), bool(progressbar))
    if key_ not in runs:
        def npmodel(X, w):
            u = [numpyro.sample(name, dist.ImproperUniform(dist.constraints.real, (),
                                                           v.shape[1:]))
                 for name, v in zip(jm.names, init)]
            numpyro.factor("logp", jm.logp(X, w, *u))

        runs[key_] = MCMC(NUTS(npmodel, target_accept_prob=target_accept, dense_mass=False),
                          num_warmup=tune, num_samples=draws, num_chains=chains,
                          chain_method="vectorized", progress_bar=progressbar,
                          jit_model_args=True)
    mcmc = runs[key_]
    key = jax.random.PRNGKey(seed)
    mcmc.run(key if chains == 1 else jax.random.split(key, chains), jnp.asarray(X),
             jnp.ones(X.shape[0]),
             init_params={name: (v[0] if chains == 1 else v) for name, v in zip(jm.names, init)},
             extra_fields=("num_steps", "potential_energy", "energy", "adapt_state.step_size",
                           "accept_prob", "diverging"))
    raw = mcmc.get_samples(group_by_chain=True)
    fields = mcmc.get_extra_fields(group_by_chain=True)
    n_steps = np.asarray(fields["num_steps"])
    stats = {
        "diverging": np.asarray(fields["diverging"]),
        "energy": np.asarray(fields["energy"]),
        "tree_depth": np.floor(np.log2(np.maximum(n_steps, 1))).astype(np.int64) + 1,
        "n_steps": n_steps,
        "acceptance_rate": np.asarray(fields["accept_prob"]),
        "lp": -np.asarray(fields["potential_energy"]),
        "step_size": np.asarray(fields["adapt_state.step_size"]),
    }
    return _constrain_draws(jm, [raw[name] for name in jm.names]), stats


# --- blackjax ------------------------------------------------------------------------------
#: warm-up and draws run in pieces of this many steps: the compiled programs then depend on the
#: model's structure, N and the number of chains only (not on draws or tune), and a progress bar
#: can follow them
PIECE = 50


def _vectorise(fn, batched):
    """Vmap over chains; with ``batched``, a loop over data sets around that, in the program.

    Not a vmap over data sets: vmapped NUTS advances in lockstep, so every data set would wait
    for the longest trajectory of any (100 SBC replicates took longer than one after another).
    """
    fn = jax.vmap(fn, in_axes=(0, 0, None, None))
    if not batched:
        return fn
    return lambda keys, carry, xs, X: jax.lax.map(lambda a: fn(a[0], a[1], xs, a[2]),
                                                  (keys, carry, X))


def _logdensity(logp, data, u):
    """The log density at ``u`` given ``data`` = (X, w): rows and their weights (0 = padding)."""
    return logp(*data, *u)


def _adaptation(target_accept):
    """Blackjax's window adaptation (Stan's windows; step size and diagonal mass matrix)."""
    from blackjax.adaptation.window_adaptation import base

    return base(True, target_acceptance_rate=target_accept)


def _warm_start(keys, positions, X, *, logp, target_accept, batched):
    """Every chain's NUTS state and adaptation state at its start point.

    The first step size is found as Stan and numpyro do (Hoffman and Gelman's heuristic: halve
    or double one leapfrog step until its acceptance crosses ``target_accept``), not fixed at 1.
    From 1, dual averaging's first updates overshoot far below the posterior's scale when that is
    small (sd 0.005 at N = 100,000), and the warm-up's first trajectories then run to the
    maximum tree depth: 1,023 gradients each.
    """
    import blackjax
    from blackjax.adaptation.step_size import find_reasonable_step_size

    init, _, _ = _adaptation(target_accept)
    hmc = blackjax.hmc.build_kernel()

    def chain(key, position, xs, X):
        logdensity = partial(_logdensity, logp, X)
        state = blackjax.nuts.init(position, logdensity)
        ones = init(position, 1.0).inverse_mass_matrix

        def leapfrog(step_size):
            return lambda k, s: hmc(k, s, logdensity, step_size, ones, 1)

        step_size = find_reasonable_step_size(jax.random.fold_in(key, 2**31 - 1), leapfrog, state,
                                              1.0, target_accept)
        return state, init(position, step_size)

    return _vectorise(chain, batched)(keys, positions, None, X)


def _rescaled(adapted, old_imm, target_accept):
    """After a metric update, the step size that keeps the leapfrog's step in the parameters.

    A slow window's end puts the estimated variances in the inverse mass matrix but keeps the
    step size tuned for the old metric; when the variances are far from 1 (1e-4 at N = 100,000)
    that step is far too short in the new one, and trajectories run to the maximum tree depth
    until dual averaging climbs back (the draws' averaged step size lags further). As Stan
    starts the step size afresh after each metric update, this restarts dual averaging at the
    old step times the geometric mean of sqrt(old / new inverse mass matrix).
    """
    from blackjax.adaptation.step_size import dual_averaging_adaptation

    da_init = dual_averaging_adaptation(target_accept)[0]
    new_imm = adapted.inverse_mass_matrix
    changed = jnp.any(new_imm != old_imm)
    step_size = adapted.step_size * jnp.exp(0.5 * jnp.mean(jnp.log(old_imm / new_imm)))
    step_size = jnp.where(changed, step_size, adapted.step_size)
    return adapted._replace(
        ss_state=jax.tree.map(lambda new, old: jnp.where(changed, new, old), da_init(step_size),
                              adapted.ss_state),
        step_size=step_size)


#: what a step of :func:`_steps` does (the schedule's last column)
PAD, ADAPT, DRAW = 0, 1, 2


def _steps(keys, carry, schedule, X, *, logp, target_accept, batched):
    """:data:`PIECE` NUTS steps of every chain: (carry, (positions, stats)).

    One program serves the warm-up and the draws, so a new structure compiles it once.
    ``schedule`` (PIECE, 3) holds, per step, Stan's window stage and what the step does:
    ``ADAPT`` moves the chain and updates the step size and mass matrix, ``DRAW`` moves the
    chain with them fixed, ``PAD`` (the tail of the last warm-up piece) changes nothing. The
    kernel uses the adaptation state's current step size and inverse mass matrix; after the
    warm-up :func:`_run_blackjax` puts the adapted values there.
    """
    import blackjax

    _, update, _ = _adaptation(target_accept)
    kernel = blackjax.nuts.build_kernel()

    def chain(key, carry, schedule, X):
        logdensity = partial(_logdensity, logp, X)

        def one_step(carry, xs):
            k, stage = xs
            state, adaptation = carry
            new_state, info = kernel(k, state, logdensity, adaptation.step_size,
                                     adaptation.inverse_mass_matrix)
            adapted = _rescaled(update(adaptation, stage[:2], new_state.position,
                                       info.acceptance_rate), adaptation.inverse_mass_matrix,
                                target_accept)
            state = jax.tree.map(lambda new, old: jnp.where(stage[2] != PAD, new, old),
                                 new_state, state)
            adaptation_out = jax.tree.map(lambda new, old: jnp.where(stage[2] == ADAPT, new, old),
                                          adapted, adaptation)
            return (state, adaptation_out), (state.position, {
                "diverging": info.is_divergent,
                "energy": info.energy,
                "tree_depth": info.num_trajectory_expansions,
                "n_steps": info.num_integration_steps,
                "acceptance_rate": info.acceptance_rate,
                "lp": state.logdensity,
                "step_size": adaptation.step_size,
            })

        return jax.lax.scan(one_step, carry, (jax.random.split(key, PIECE), schedule))

    return _vectorise(chain, batched)(keys, carry, schedule, X)


#: bump when the programs above change in a way their digest cannot see
_PROGRAM_VERSION = 5
_PROGRAMS: dict = {}


def _register_states():
    """Let jax.export serialise blackjax's state types (named tuples) in programs' signatures."""
    from blackjax.adaptation.mass_matrix import MassMatrixAdaptationState, WelfordAlgorithmState
    from blackjax.adaptation.step_size import DualAveragingAdaptationState
    from blackjax.adaptation.window_adaptation import WindowAdaptationState
    from blackjax.mcmc.hmc import HMCState

    for cls in (HMCState, WindowAdaptationState, DualAveragingAdaptationState,
                MassMatrixAdaptationState, WelfordAlgorithmState):
        try:
            jax.export.register_namedtuple_serialization(
                cls, serialized_name=f"{cls.__module__}.{cls.__qualname__}")
        except ValueError:                          # registered already
            pass


def _program(name, impl, args, jm, **static):
    """``impl`` with ``static`` bound, compiled for the shapes of ``args``, and called on them.

    Tracing the warm-up and the draws takes about 5 s a process, so each program is exported
    (``jax.export``) once and kept next to JAX's compilation cache, keyed by the model's
    fingerprint, the static arguments, the argument shapes and this module's source; a later
    process deserialises it instead of tracing, and JAX's cache compiles it.
    """
    shapes = [(x.shape, str(x.dtype)) for x in jax.tree_util.tree_leaves(args)]
    digest = hashlib.sha1(repr((name, jm.fingerprint, sorted(static.items()), shapes,
                                _PROGRAM_VERSION, _SOURCE)).encode()).hexdigest()
    fn = _PROGRAMS.get(digest)
    if fn is None:
        _register_states()
        folder = jax.config.jax_compilation_cache_dir
        path = os.path.join(folder, "exported", f"{name}-{digest}.jax") if folder else None
        exported = _read_exported(path)
        if exported is None:
            exported = jax.export.export(jax.jit(partial(impl, logp=jm.logp, **static)))(*args)
            _write_exported(path, exported)
        fn = _PROGRAMS[digest] = jax.jit(exported.call)
    return fn(*args)


def _read_exported(path):
    if path is None or not os.path.exists(path):
        return None
    try:
        with open(path, "rb") as fh:
            return jax.export.deserialize(bytearray(fh.read()))
    except Exception:                  # unreadable or from another jax: export afresh
        return None


def _write_exported(path, exported):
    """Write atomically (a temporary file renamed into place); a read-only cache is skipped."""
    if path is None:
        return
    data = exported.serialize()
    try:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=os.path.dirname(path), suffix=".part")
    except OSError:
        return
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(tmp, path)
    except BaseException:              # a full disk, or Ctrl-C: no half-written file stays
        os.unlink(tmp)
        if not isinstance(sys.exc_info()[1], OSError):
            raise


def _schedule(tune, draws):
    """What each step does, in pieces of :data:`PIECE`: (pieces, PIECE, 3) of int32.

    Columns: Stan's window stage (two numbers) and ``ADAPT``, ``DRAW`` or ``PAD``. The warm-up's
    last piece is padded, so the draws start on a fresh piece; the last draw piece runs whole
    and its extra draws are dropped.
    """
    from blackjax.adaptation.window_adaptation import build_schedule

    n_tune = -(-tune // PIECE) * PIECE
    n_draw = -(-draws // PIECE) * PIECE
    out = np.zeros((n_tune + n_draw, 3), dtype=np.int32)
    if tune:
        out[:tune, :2] = build_schedule(tune)
        out[:tune, 2] = ADAPT
    out[n_tune:, 2] = DRAW
    return out.reshape(-1, PIECE, 3)


def _pieces_keys(keys, i):
    """The keys of piece ``i``: each chain's key folded with i (same shape as ``keys``)."""
    flat = keys.reshape(-1, keys.shape[-1])
    return jax.vmap(lambda k: jax.random.fold_in(k, i))(flat).reshape(keys.shape)


def bucket(N):
    """The padded length for N rows: N rounded up to a multiple of 2^(floor(log2 N) - 2).

    At most 25 % of padding (weight-0 rows); N = 257..320 all share 320, so one compiled program
    serves a new N nearby as well as new values of the same N.
    """
    step = 2 ** max(int(np.floor(np.log2(max(N, 1)))) - 2, 0)
    return -(-N // step) * step


def _padded(X):
    """The data and their weights, the rows (axis -2) padded to :func:`bucket`.

    The padding repeats the first row with weight 0, so it changes no log density.
    """
    N = X.shape[-2]
    pad = bucket(N) - N
    w = np.ones(X.shape[:-1])
    if pad:
        X = np.concatenate([X, np.repeat(X[..., :1, :], pad, axis=-2)], axis=-2)
        w = np.concatenate([w, np.zeros((*w.shape[:-1], pad))], axis=-1)
    return jnp.asarray(X), jnp.asarray(w)


def _run_blackjax(model, X, init, keys, draws, tune, target_accept, progressbar, batched):
    from tqdm.auto import tqdm

    jm = jax_model(model)
    X = _padded(np.asarray(X, dtype=np.float64))
    static = {"target_accept": float(target_accept), "batched": batched}
    warm_keys, draw_keys = keys[..., 0, :], keys[..., 1, :]
    schedule = _schedule(tune, draws)
    n_tune = -(-tune // PIECE)
    pieces = []
    with tqdm(total=tune + draws, disable=not progressbar, unit="steps",
              desc="blackjax NUTS, all chains") as bar:
        carry = _program("warm_start", _warm_start, (warm_keys, init, X), jm, **static)
        for i, stage in enumerate(schedule):
            if i == n_tune and tune:        # warm-up done: sample with the adapted values
                states, adaptation = carry
                carry = (states, adaptation._replace(
                    step_size=jnp.exp(adaptation.ss_state.log_step_size_avg),
                    inverse_mass_matrix=adaptation.imm_state.inverse_mass_matrix))
            piece_keys = _pieces_keys(warm_keys if i < n_tune else draw_keys,
                                      i if i < n_tune else i - n_tune)
            carry, out = _program("steps", _steps, (piece_keys, carry, jnp.asarray(stage), X),
                                  jm, **static)
            if i >= n_tune:
                pieces.append(jax.device_get(out))
            bar.update(min(PIECE, tune - i * PIECE) if i < n_tune
                       else min(PIECE, draws - (i - n_tune) * PIECE))
    axis = 2 if batched else 1

    def joined(parts):            # the pieces end to end, cut to ``draws``
        return np.take(np.concatenate(parts, axis=axis), np.arange(draws), axis=axis)

    samples = [joined([p[0][j] for p in pieces]) for j in range(len(jm.names))]
    stats = {k: joined([p[1][k] for p in pieces]) for k in pieces[0][1]}
    return _constrain_draws(jm, samples), stats


def _keys(seed, shape):
    """Two keys (warm-up, draws) per chain: shape + (2, key size)."""
    keys = jax.random.split(jax.random.PRNGKey(seed), int(np.prod(shape)) * 2)
    return keys.reshape(*shape, 2, -1)


def sample_blackjax(model, X, starts, draws, tune, seed, target_accept, progressbar=False):
    """Blackjax's NUTS with window adaptation, every chain in one vectorised program.

    Two programs are compiled per model structure, N bucket and number of chains (the start,
    and a piece of :data:`PIECE` warm-up or draw steps), whatever draws and tune are; the data
    are an argument of both.

    Parameters and returns as :func:`sample_numpyro`.
    """
    init = [jnp.asarray(v) for v in unconstrained_starts(model, starts)]
    return _run_blackjax(model, X, init, _keys(seed, (len(starts),)), draws, tune,
                         target_accept, progressbar, batched=False)


def sample_blackjax_batch(model, Xs, starts, draws, tune, seed, target_accept,
                          progressbar=False):
    """Many data sets of one shape, each with its own chains, in one vectorised program.

    Parameters
    ----------
    model : pymc.Model
        Built for the data sets' shape.
    Xs : ndarray of shape (R, N, d)
    starts : list of list of dict
        Per data set, one start point per chain (the same number of chains for each).
    draws, tune, seed, target_accept, progressbar
        As :func:`sample_blackjax`.

    Returns
    -------
    posterior : dict of ndarray
        Each (R, chain, draw, ...).
    stats : dict of ndarray
        Each (R, chain, draw).
    """
    inits = [unconstrained_starts(model, s) for s in starts]
    init = [jnp.asarray(np.stack([i[j] for i in inits])) for j in range(len(inits[0]))]
    return _run_blackjax(model, Xs, init, _keys(seed, (len(starts), len(starts[0]))), draws,
                         tune, target_accept, progressbar, batched=True)
