"""The JAX routes' compiled-program cache: keyed on what the program depends on, never torn."""

import jax
import numpy as np
import pytensor.tensor as pt
import pytest

import em
from models import Prior, load_faithful
from models import pymc as gmm_pymc
from models.pymc import jax_routes


def _fingerprint(X, prior):
    return jax_routes.jax_model(gmm_pymc.build_model(X, 2, "full", prior)).fingerprint


def test_fingerprint_ignores_the_data_and_sees_the_prior_and_the_transform(monkeypatch):
    X, _ = load_faithful()
    prior = Prior.default(X, 2)
    base = _fingerprint(X, prior)
    assert _fingerprint(X[::-1] + 1.0, prior) == base          # the data are an argument,
    assert _fingerprint(X[:200], prior) == base                 # and so is N
    assert _fingerprint(X, Prior.default(X + 1.0, 2)) != base  # the prior's numbers are not

    def log_jac_det(self, value, *inputs):                    # a wrong Jacobian power
        log_diag = pt.as_tensor_variable(value)[..., self.diag_pos]
        return self.d * np.log(2.0) + (log_diag * (self.power - 1.0)).sum(axis=-1)

    monkeypatch.setattr(gmm_pymc.CholeskyLogDiag, "log_jac_det", log_jac_det)
    assert _fingerprint(X, prior) != base


def test_unreadable_exported_program_is_ignored(tmp_path):
    path = tmp_path / "draw-0.jax"
    path.write_bytes(b"not a program")
    assert jax_routes._read_exported(str(path)) is None
    assert jax_routes._read_exported(str(tmp_path / "missing.jax")) is None


class _Exported:
    def __init__(self, data):
        self.data = data

    def serialize(self):
        return self.data


def test_exported_program_is_written_whole_or_not_at_all(tmp_path, monkeypatch):
    path = tmp_path / "exported" / "warm_up-1.jax"
    jax_routes._write_exported(str(path), _Exported(b"program"))
    assert path.read_bytes() == b"program"

    def interrupted(src, dst):
        raise KeyboardInterrupt

    monkeypatch.setattr(jax_routes.os, "replace", interrupted)
    with pytest.raises(KeyboardInterrupt):
        jax_routes._write_exported(str(tmp_path / "exported" / "draw-2.jax"), _Exported(b"x"))
    assert sorted(p.name for p in path.parent.iterdir()) == ["warm_up-1.jax"]


def test_bucket_pads_at_most_a_quarter_and_padding_changes_no_density():
    for N in [1, 2, 7, 40, 150, 272, 1000, 100_000]:
        assert N <= jax_routes.bucket(N) <= 1.25 * N
    assert jax_routes.bucket(272) == jax_routes.bucket(300) == 320
    X, _ = load_faithful()
    jm = jax_routes.jax_model(gmm_pymc.build_model(X, 2, "full", Prior.default(X, 2)))
    u = [np.asarray(v) for v in jm.unconstrain(np.array([0.4, 0.6]), np.stack([np.eye(2)] * 2),
                                                np.array([[2.0, 55.0], [4.3, 80.0]]))]
    logp = jax.jit(jm.logp)
    whole = float(logp(X, np.ones(len(X)), *u))
    padded, w = jax_routes._padded(X)
    assert padded.shape == (320, 2) and float(w.sum()) == 272
    np.testing.assert_allclose(float(logp(padded, w, *u)), whole, rtol=1e-12)


def test_new_data_new_n_draws_and_tune_reuse_the_compiled_programs():
    from reports import joint

    X, _ = load_faithful()
    prior = Prior.default(X, 2)
    joint.sample(X, 2, "full", prior=prior, draws=60, tune=60, chains=2, random_seed=1)
    programs = set(jax_routes._PROGRAMS)
    # another N in the same bucket (257..320), other values, other draws and tune: no new program
    dt = joint.sample(X[:300 - 40] * 1.01, 2, "full", prior=prior, draws=130, tune=75, chains=2,
                      random_seed=2)
    assert set(jax_routes._PROGRAMS) == programs
    assert dt["posterior"]["mu"].shape == (2, 130, 2, 2)
    assert dt["observed_data"]["x"].shape == (260, 2)


def test_the_jax_models_functions_called_outside_a_program_compile_once_each():
    # numpyro evaluates the log density and its gradient at the start outside any compiled
    # program, and the chains' starts are unconstrained the same way: run op by op, XLA
    # compiled each of the graph's operations on its own (420 programs, 9 s of a fresh
    # machine's first numpyro run); jitted, each function is one program (the routes' draws
    # are unchanged: their same-seed tests, and the posteriors against the default route's)
    from jax._src.dispatch import BACKEND_COMPILE_EVENT

    X, _ = load_faithful()
    prior = Prior.default(X, 2)
    model = gmm_pymc.build_model(X, 2, "full", prior)
    starts = [gmm_pymc.params_to_point(em.fit(X, 2, prior=prior, random_state=s).params)
              for s in (0, 1)]
    compiled = []

    def listen(event, duration, **kwargs):
        # jit(stage) moves an argument of a new shape to the device: not the model's arithmetic
        if event == BACKEND_COMPILE_EVENT and kwargs.get("fun_name") != "jit(stage)":
            compiled.append(kwargs.get("fun_name"))

    jax.monitoring.register_event_duration_secs_listener(listen)
    try:
        u = jax_routes.unconstrained_starts(model, starts)
        jm = jax_routes.jax_model(model)
        args = tuple(jax.numpy.asarray(a) for a in (X, np.ones(len(X)), *(v[0] for v in u)))
        value, grad = jax.value_and_grad(jm.logp, argnums=(2, 3, 4))(*args)
        again = jm.logp(*args)
    finally:
        jax.monitoring.unregister_event_duration_listener(listen)
    # unconstrain, logp, its gradient and a few of JAX's own small programs (op by op: 317)
    assert len(compiled) <= 8, compiled
    assert np.isfinite(value) and float(again) == float(value)
    assert all(np.all(np.isfinite(g)) for g in grad)
