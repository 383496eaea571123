from pathlib import Path

import numpy as np
import pytest
from scipy import stats
from scipy.special import logsumexp

from models import SKLEARN_TYPES, GMMParams, family
from tests.conftest import random_params


def scipy_log_pdf(params, X):
    full = params.to_full()
    comps = [np.log(full.pi[k]) + stats.multivariate_normal(full.mu[k], full.Sigma[k]).logpdf(X)
             for k in range(full.K)]
    return logsumexp(np.column_stack(comps), axis=1)


@pytest.mark.parametrize("covariance_type", SKLEARN_TYPES)
@pytest.mark.parametrize("d", [1, 3])
def test_log_pdf_matches_scipy(rng, covariance_type, d):
    params = random_params(rng, 3, d, covariance_type)
    X = rng.normal(scale=4, size=(200, d))
    np.testing.assert_allclose(params.log_pdf(X), scipy_log_pdf(params, X), rtol=1e-10, atol=0)


@pytest.mark.parametrize("covariance_type", SKLEARN_TYPES)
def test_log_joint_and_responsibilities(rng, covariance_type):
    params = random_params(rng, 4, 2, covariance_type)
    X = rng.normal(scale=3, size=(50, 2))
    full = params.to_full()
    expected = np.column_stack([
        np.log(full.pi[k]) + stats.multivariate_normal(full.mu[k], full.Sigma[k]).logpdf(X)
        for k in range(4)])
    np.testing.assert_allclose(params.log_joint(X), expected, rtol=1e-10)
    gamma = params.responsibilities(X)
    np.testing.assert_allclose(gamma.sum(axis=1), 1.0, rtol=1e-12)
    np.testing.assert_allclose(gamma, np.exp(expected - logsumexp(expected, axis=1)[:, None]),
                               rtol=1e-9)


def test_log_pdf_stable_far_from_all_components():
    params = GMMParams([0.5, 0.5], [[0.0], [1.0]], [1e-4, 1e-4], "spherical")
    lp = params.log_pdf(np.array([[1e3]]))
    assert np.isfinite(lp).all() and lp[0] < -1e9


def test_n_parameters_matches_sklearn(rng):
    from sklearn.mixture import GaussianMixture

    X = rng.normal(size=(60, 3))
    for ct in SKLEARN_TYPES:
        sk = GaussianMixture(4, covariance_type=ct, max_iter=200).fit(X)
        ours = random_params(rng, 4, 3, ct)
        assert ours.n_parameters == sk._n_parameters()


def test_to_full_and_permute(rng):
    p = random_params(rng, 3, 2, "diag")
    f = p.to_full()
    assert f.covariance_type == "full" and f.Sigma.shape == (3, 2, 2)
    np.testing.assert_allclose(np.diagonal(f.Sigma, axis1=1, axis2=2), p.Sigma)
    q = p.permute([2, 0, 1])
    np.testing.assert_array_equal(q.mu, p.mu[[2, 0, 1]])
    X = rng.normal(size=(10, 2))
    np.testing.assert_allclose(q.log_pdf(X), p.log_pdf(X), rtol=1e-12)


def test_immutable(rng):
    p = random_params(rng, 2, 2, "full")
    with pytest.raises(AttributeError):
        p.pi = np.array([1.0, 0.0])
    with pytest.raises(ValueError):
        p.mu[0, 0] = 5.0


@pytest.mark.parametrize(
    ("kwargs", "exc", "match"),
    [
        (dict(pi=[0.5, 0.6], mu=[[0.0], [1.0]], Sigma=[1.0, 1.0]), ValueError, "simplex"),
        (dict(pi=[1.5, -0.5], mu=[[0.0], [1.0]], Sigma=[1.0, 1.0]), ValueError, "simplex"),
        (dict(pi=[0.5, 0.5], mu=[[0.0], [1.0], [2.0]], Sigma=[1.0, 1.0]), ValueError, r"\(K, d\)"),
        (dict(pi=[0.5, 0.5], mu=[[0.0], [1.0]], Sigma=[1.0]), ValueError, r"shape \(2,\)"),
        (dict(pi=[0.5, 0.5], mu=[[0.0], [1.0]], Sigma=[1.0, -1.0]), ValueError, "positive"),
        (dict(pi=[0.5, 0.5], mu=[[0.0], [np.nan]], Sigma=[1.0, 1.0]), ValueError, "finite"),
        (dict(pi=[0.5, 0.5], mu=[["a"], ["b"]], Sigma=[1.0, 1.0]), TypeError, "numeric"),
        (dict(pi=[1.0], mu=[[0.0, 0.0]], Sigma=[[[1.0, 0.5], [0.4, 1.0]]]), ValueError, "symmetric"),
        (dict(pi=[1.0], mu=[[0.0, 0.0]], Sigma=[[[1.0, 2.0], [2.0, 1.0]]]), ValueError,
         "component 0 is not positive-definite"),
        (dict(pi=[1.0], mu=[[0.0]], Sigma=[1.0], covariance_type="banana"), ValueError,
         "mclust's EII, VII, EEI.*scikit-learn's spherical, diag, tied, full"),
    ],
)
def test_invalid_params_raise(kwargs, exc, match):
    kwargs.setdefault("covariance_type", "spherical" if np.ndim(kwargs["Sigma"]) == 1 else "full")
    with pytest.raises(exc, match=match):
        GMMParams(**kwargs)


def test_log_pdf_rejects_bad_X(rng):
    p = random_params(rng, 2, 2, "full")
    with pytest.raises(ValueError, match=r"shape \(N, 2\)"):
        p.log_pdf(np.zeros((3, 3)))
    with pytest.raises(ValueError, match="inf at row 0"):
        p.log_pdf(np.array([[np.inf, 0.0]]))
    with pytest.raises(ValueError, match="no observed value in row 1"):
        p.log_pdf(np.array([[0.0, 1.0], [np.nan, np.nan]]))


def test_n_parameters_equal_mclusts_df():
    # mclust's own df (tests/data/mclust/golden.csv, written by make_golden.R) for its 14 models
    import pandas as pd

    golden = pd.read_csv(Path(__file__).parents[1] / "data" / "mclust" / "golden.csv")
    rows = golden[golden["df"].notna()].drop_duplicates(["model", "G", "d"])
    assert rows["model"].nunique() == 14
    for r in rows.itertuples():
        K, d = int(r.G), int(r.d)
        params = random_params(np.random.default_rng(0), K, d, r.model)
        assert params.n_parameters == int(r.df), r


def test_unchecked_is_read_only_and_leaves_the_callers_arrays_alone(rng):
    p = random_params(rng, 2, 2, "full")
    pi, mu, Sigma, L = (np.array(a) for a in (p.pi, p.mu, p.Sigma, p.cholesky))
    q = GMMParams.unchecked(pi, mu, Sigma, family("full"), L, "full")
    assert all(a.flags.writeable for a in (pi, mu, Sigma, L))
    with pytest.raises(ValueError):
        q.mu[0, 0] = 5.0
    X = rng.normal(size=(10, 2))
    np.testing.assert_array_equal(q.log_pdf(X), p.log_pdf(X))
    np.testing.assert_array_equal(q.validated().cholesky, p.cholesky)
    with pytest.raises(ValueError, match="simplex"):
        GMMParams.unchecked(pi * 2, mu, Sigma, family("full"), L).validated()
