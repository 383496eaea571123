"""The JAX routes' compiled-program cache: keyed on what the program depends on, never torn."""

import jax
import numpy as np
import pytensor.tensor as pt
import pytest

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
