import math

import numpy as np
import pytest
from scipy.special import logsumexp

import models.storage
from models.features import (
    LINEAR,
    PRODUCTS,
    SQUARES,
    default_chunk,
    features,
    float64_sums,
    log_joint_of,
    log_joint_stacked,
    n_dims,
    n_features,
    normalise,
)
from models.storage import STORAGES
from tests.conftest import random_params

RTOL = {np.float32: 1e-6, np.float64: 1e-14}


def reference(Xc, kind):
    """z(x) written out with NumPy column operations, one row per observation."""
    if kind == LINEAR:
        return Xc
    cols = [np.ones((Xc.shape[0], 1)), Xc]
    if kind == SQUARES:
        cols.append(Xc**2)
    if kind == PRODUCTS:
        cols += [Xc[:, [i]] * Xc[:, [j]] for i in range(Xc.shape[1]) for j in range(i, Xc.shape[1])]
    return np.hstack(cols)


@pytest.mark.parametrize("kind", [LINEAR, SQUARES, PRODUCTS])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_features_match_numpy(rng, kind, dtype):
    X = rng.normal(size=(37, 4)) * [1.0, 10.0, 0.1, 3.0] + 50.0
    shift = X.mean(axis=0)
    Z = features(X, shift, kind, dtype)
    assert Z.dtype == dtype and Z.shape == (n_features(4, kind), 37)
    assert Z.flags.f_contiguous if kind == LINEAR else Z.flags.c_contiguous
    np.testing.assert_allclose(Z, reference(X - shift, kind).T, rtol=RTOL[dtype], atol=1e-12)


def test_centring_happens_before_the_cast_to_float32(rng):
    # float32 cannot hold 1e6 + 0.1 exactly; centring in float64 first keeps the offset
    X = 1e6 + rng.normal(scale=0.1, size=(50, 2))
    Z = features(X, X.mean(axis=0), LINEAR, np.float32)
    np.testing.assert_allclose(Z.T, X - X.mean(axis=0), rtol=1e-6)


@pytest.mark.parametrize("kind", [LINEAR, SQUARES, PRODUCTS])
def test_float32_rows_at_a_float32_shift_equal_float64_centring_then_the_cast(rng, kind):
    # the fast path centres in float32; for these inputs that rounds once, as float64 does
    X = (rng.normal(size=(301, 3)) * [1.0, 100.0, 0.01] + 20.0).astype(np.float32)
    shift = X.mean(axis=0, dtype=np.float64).astype(np.float32).astype(np.float64)
    Z = features(X, shift, kind, np.float32)
    ref = (X.astype(np.float64) - shift).astype(np.float32).astype(np.float64)
    np.testing.assert_array_equal(Z[int(kind != LINEAR):][:3], ref.T)


def test_buffer_is_reused_for_shorter_blocks_and_any_input_layout(rng):
    X = rng.normal(size=(20, 3))
    buf = np.empty(n_features(3, PRODUCTS) * 20)
    shift = np.zeros(3)
    Z = features(X, shift, PRODUCTS, np.float64, buf)
    assert np.shares_memory(Z, buf)
    short = features(np.asfortranarray(X[:7]), shift, PRODUCTS, np.float64, buf)
    assert short.shape == (n_features(3, PRODUCTS), 7) and short.flags.c_contiguous
    np.testing.assert_allclose(short, reference(X[:7], PRODUCTS).T, rtol=1e-14)
    from_f32 = features(X.astype(np.float32), shift, SQUARES, np.float64)
    X32 = X.astype(np.float32).astype(np.float64)
    np.testing.assert_allclose(from_f32, reference(X32, SQUARES).T, rtol=1e-14)


@pytest.mark.parametrize("kind", [LINEAR, SQUARES, PRODUCTS])
def test_n_dims_inverts_n_features(kind):
    for d in range(1, 80):
        assert n_dims(n_features(d, kind), kind) == d


def test_default_chunk_keeps_a_block_in_cache():
    for storage in STORAGES:
        for K, d in ((1, 1), (3, 2), (8, 10), (16, 50), (100, 200)):
            for dtype in (np.float32, np.float64):
                rows = default_chunk(K, d, storage, dtype)
                assert 256 <= rows <= 32768
                size = (n_features(d, storage.kind) + K) * rows * np.dtype(dtype).itemsize
                assert size <= 2**19 or rows == 256
            assert default_chunk(K, d, storage, np.float32) >= default_chunk(K, d, storage)


def test_normalise_is_softmax_and_logsumexp(rng):
    for dtype, tol in ((np.float64, 1e-13), (np.float32, 1e-5)):
        L = (rng.normal(scale=30.0, size=(5, 200)) - 700.0).astype(dtype)  # exp underflows
        ref_lse = logsumexp(L.astype(np.float64), axis=0)
        G = L.copy()
        m, log_t = normalise(G)
        np.testing.assert_allclose(m + log_t, ref_lse, rtol=tol)
        np.testing.assert_allclose(G, np.exp(L - ref_lse), rtol=tol, atol=tol)
        np.testing.assert_allclose(-log_t, (L - ref_lse).max(axis=0), rtol=tol, atol=tol)


def test_float64_sums_match_exact_sums_for_either_dtype(rng):
    for dtype in (np.float32, np.float64):
        a = rng.normal(scale=1e3, size=10_001).astype(dtype)
        b = (-np.abs(a)).astype(dtype)
        s_a, s_b = float64_sums(a, b)
        assert isinstance(s_a, float) and isinstance(s_b, float)
        for got, x in ((s_a, a), (s_b, b)):
            exact = math.fsum(x.astype(np.float64))
            assert abs(got - exact) <= 1e-12 * math.fsum(np.abs(x.astype(np.float64)))


def _log_joint(params, X):
    shift = X.mean(axis=0)
    kernel = log_joint_of(params, shift, np.float64)
    L, row = kernel(features(X, shift, kernel.kind, np.float64))
    return kernel, L + (0.0 if row is None else row)


def test_precise_and_expanded_full_kernels_agree(rng, monkeypatch):
    params = random_params(rng, 4, 5, "full")
    X = rng.normal(scale=3, size=(400, 5))
    monkeypatch.setattr(models.storage, "PRECISE_ABOVE", np.inf)
    expanded, L_expanded = _log_joint(params, X)
    monkeypatch.setattr(models.storage, "PRECISE_ABOVE", 0.0)
    precise, L_precise = _log_joint(params, X)
    assert precise.precise and not expanded.precise
    np.testing.assert_allclose(L_expanded, L_precise, rtol=1e-12)


@pytest.mark.parametrize("kind", [LINEAR, SQUARES, PRODUCTS])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_numpy_kernels_give_numbas_values(rng, kind, dtype):
    # small passes take the NumPy calls (numba's runtime costs a second to load): the same
    # operations in the same order, so the same bits
    X = (rng.normal(size=(301, 4)) * [1.0, 10.0, 0.1, 3.0] + 50.0).astype(dtype)
    shift = X.mean(axis=0, dtype=np.float64)
    np.testing.assert_array_equal(features(X, shift, kind, dtype, compiled=False),
                                  features(X, shift, kind, dtype, compiled=True))
    L = (rng.normal(scale=30.0, size=(5, 301)) - 700.0).astype(dtype)
    a, b = L.copy(), L.copy()
    for x, y in zip(normalise(a, compiled=False), normalise(b, compiled=True)):
        np.testing.assert_array_equal(x, y)
    np.testing.assert_array_equal(a, b)
    np.testing.assert_allclose(float64_sums(L[0], L[1], compiled=False),
                               float64_sums(L[0], L[1], compiled=True), rtol=1e-13)


@pytest.mark.parametrize("kind", [LINEAR, SQUARES, PRODUCTS])
@pytest.mark.parametrize("d", [1, 2, 5, 9])
def test_the_compiled_stacked_kernel_gives_the_numpy_calls_bits(rng, kind, d):
    # the Gibbs route's sweeps take log_joint_stacked as one numba call: the same formulas in
    # the same order, so the same bits (the sweeps' draws with it are those without it); from
    # d = 8 NumPy sums mu^T Lambda mu pairwise, the kernel in order: the last bits may differ
    S, K = 4, 3
    mu = rng.normal(scale=5.0, size=(S, K, d))
    log_pi = np.log(rng.dirichlet(np.ones(K), size=S))
    if kind == SQUARES:
        prec = rng.uniform(0.1, 10.0, size=(S, K, d))
        log_det = np.log(prec).sum(-1)
    else:
        B = rng.normal(size=(S, K, d, d))
        prec = B @ np.swapaxes(B, -1, -2) + np.eye(d)
        log_det = np.linalg.slogdet(prec)[1]
    a = log_joint_stacked(log_pi, mu, prec, log_det, kind)
    b = log_joint_stacked(log_pi, mu, prec, log_det, kind, compiled=True)
    assert a.kind == b.kind == kind
    if d < 8:
        np.testing.assert_array_equal(a.A, b.A)
    np.testing.assert_allclose(a.A, b.A, rtol=1e-13, atol=1e-13 * np.abs(a.A).max())


def test_small_passes_never_load_numba():
    import subprocess
    import sys

    code = ("import sys, numpy as np, em; X = np.random.default_rng(0).normal(size=(300, 3)); "
            "em.fit(X, 2); print('numba' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
