import numpy as np
import pytest
from scipy import stats

from models import SKLEARN_TYPES, GMMParams, Prior, family, load_faithful, sample_params
from tests.conftest import random_params


def make_prior(rng, d, K=3):
    A = rng.normal(size=(d, d))
    return Prior(alpha=rng.uniform(0.5, 3, size=K), m0=rng.normal(size=d), kappa0=0.7,
                 nu0=d + 2.5, Psi0=A @ A.T + d * np.eye(d))


def scipy_log_density(prior, p):
    lp = stats.dirichlet(prior.alpha_for(p.K)).logpdf(p.pi)
    K, d = p.K, p.d
    if p.covariance_type == "full":
        for k in range(K):
            lp += stats.invwishart(prior.nu0, prior.Psi0).logpdf(p.Sigma[k])
            lp += stats.multivariate_normal(prior.m0, p.Sigma[k] / prior.kappa0).logpdf(p.mu[k])
    elif p.covariance_type == "tied":
        lp += stats.invwishart(prior.nu0, prior.Psi0).logpdf(p.Sigma)
        for k in range(K):
            lp += stats.multivariate_normal(prior.m0, p.Sigma / prior.kappa0).logpdf(p.mu[k])
    elif p.covariance_type == "diag":
        for j in range(d):
            ig = stats.invgamma(prior.nu0 / 2, scale=prior.Psi0[j, j] / 2)
            lp += ig.logpdf(p.Sigma[:, j]).sum()
            lp += stats.norm(prior.m0[j], np.sqrt(p.Sigma[:, j] / prior.kappa0)).logpdf(
                p.mu[:, j]).sum()
    else:
        ig = stats.invgamma(prior.nu0 / 2, scale=np.trace(prior.Psi0) / (2 * d))
        lp += ig.logpdf(p.Sigma).sum()
        for k in range(K):
            lp += stats.multivariate_normal(prior.m0, p.Sigma[k] / prior.kappa0 * np.eye(d)).logpdf(
                p.mu[k])
    return lp


@pytest.mark.parametrize("covariance_type", SKLEARN_TYPES)
@pytest.mark.parametrize("d", [1, 2, 4])
def test_log_density_matches_scipy(rng, covariance_type, d):
    prior = make_prior(rng, d)
    for _ in range(3):
        p = random_params(rng, 3, d, covariance_type)
        expected = scipy_log_density(prior, p)
        assert prior.log_density(p) == pytest.approx(expected, rel=1e-10, abs=1e-10)


@pytest.mark.parametrize("covariance_type", ["EII", "EEI", "EEE"])
@pytest.mark.parametrize(("K", "d"), [(1, 1), (3, 1), (1, 3), (3, 3)])
def test_mean_term_of_one_covariance_families_matches_scipy(rng, covariance_type, K, d):
    """One covariance for all: the means' term is one batched call; moving the means changes the
    density by the per-component scipy sum."""
    prior = make_prior(rng, d, K)
    p = random_params(rng, K, d, covariance_type)
    q = GMMParams(p.pi, p.mu + rng.normal(size=(K, d)), p.Sigma, covariance_type)
    full = p.to_full().Sigma

    def mean_term(mu):
        return sum(stats.multivariate_normal(prior.m0, full[k] / prior.kappa0).logpdf(mu[k])
                   for k in range(K))

    assert prior.log_density(q) - prior.log_density(p) == pytest.approx(
        mean_term(q.mu) - mean_term(p.mu), rel=1e-10, abs=1e-10)


def test_flat_prior_is_dirichlet_only(rng):
    p = random_params(rng, 3, 2, "full")
    assert Prior.flat().log_density(p) == pytest.approx(stats.dirichlet(np.ones(3)).logpdf(p.pi))
    assert Prior.flat().is_flat


@pytest.mark.parametrize("covariance_type", SKLEARN_TYPES)
def test_sample_params_prior_means(covariance_type):
    rng = np.random.default_rng(1)
    d, K, n = 2, 3, 20000
    prior = Prior(alpha=[1.0, 2.0, 3.0], m0=[1.0, -2.0], kappa0=2.0, nu0=7.0,
                  Psi0=[[2.0, 0.3], [0.3, 1.0]])
    draws = [sample_params(prior, K, d, covariance_type, rng) for _ in range(n)]
    pi = np.array([p.pi for p in draws])
    mu = np.array([p.mu for p in draws])
    Sig = np.array([p.Sigma for p in draws])
    alpha = prior.alpha_for(K)
    se = pi.std(0) / np.sqrt(n)
    assert np.all(np.abs(pi.mean(0) - alpha / alpha.sum()) < 5 * se)
    se = mu.std(0) / np.sqrt(n)
    assert np.all(np.abs(mu.mean(0) - prior.m0) < 5 * se)
    if covariance_type in ("full", "tied"):
        expected = prior.Psi0 / (prior.nu0 - d - 1)
    elif covariance_type == "diag":
        a, b = family("diag").storage.prior_scale(prior)
        expected = b / (a - 1)
    else:
        a, b = family("spherical").storage.prior_scale(prior)
        expected = b / (a - 1)
    # Inverse-Wishart / inverse-gamma draws are heavy-tailed: compare the mean with a wide margin
    rel = np.abs(Sig.mean(0) - expected) / np.abs(expected).max()
    assert rel.max() < 0.05


def test_default_follows_mclust():
    X, _ = load_faithful()
    for ct in SKLEARN_TYPES:
        pr = Prior.default(X, 2, ct)
        assert pr.kappa0 == 0.01 and pr.nu0 == 4.0
        np.testing.assert_allclose(pr.m0, [3.487783, 70.897059], rtol=1e-6)
    fac = (1 / 2) ** (2 / 2)
    np.testing.assert_allclose(Prior.default(X, 2, "full").Psi0, fac * np.cov(X.T), rtol=1e-12)
    # mclust's scale for the axis-aligned models is one number: the mean variance
    np.testing.assert_allclose(Prior.default(X, 2, "diag").Psi0,
                               fac * X.var(0, ddof=1).mean() * np.eye(2))
    np.testing.assert_allclose(Prior.default(X, 2, "spherical").Psi0,
                               fac * X.var(0, ddof=1).mean() * np.eye(2))


def test_default_with_constant_column_is_proper():
    X = np.column_stack([np.arange(10.0), np.ones(10)])
    for ct in SKLEARN_TYPES:
        pr = Prior.default(X, 2, ct)
        assert np.all(np.linalg.eigvalsh(pr.Psi0) > 0)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        (dict(alpha=[-1.0, 1.0]), "alpha must be a positive"),
        (dict(alpha=1.0, m0=[0.0], kappa0=1.0, nu0=3.0), "must be given together"),
        (dict(m0=[0.0, 0.0], kappa0=1.0, nu0=3.0, Psi0=np.eye(3)), r"shape \(d, d\)"),
        (dict(m0=[0.0, 0.0], kappa0=-1.0, nu0=3.0, Psi0=np.eye(2)), "kappa0 must be a positive"),
        (dict(m0=[0.0, 0.0], kappa0=1.0, nu0=0.5, Psi0=np.eye(2)), "nu0 must exceed"),
        (dict(m0=[0.0, 0.0], kappa0=1.0, nu0=3.0, Psi0=[[1.0, 2.0], [2.0, 1.0]]),
         "positive-definite"),
        (dict(m0=[0.0, np.nan], kappa0=1.0, nu0=3.0, Psi0=np.eye(2)), "m0 must be a finite"),
    ],
)
def test_invalid_prior_raises(kwargs, match):
    with pytest.raises(ValueError, match=match):
        Prior(**kwargs)


def test_prior_dimension_mismatch(rng):
    prior = make_prior(rng, 3)
    p = random_params(rng, 3, 2, "full")
    with pytest.raises(ValueError, match="d=3 features but the data have d=2"):
        prior.log_density(p)
    with pytest.raises(ValueError, match="alpha has 3 entries"):
        prior.log_density(random_params(rng, 2, 3, "full"))
    with pytest.raises(ValueError, match="flat prior"):
        sample_params(Prior.flat(), 2, 2, "full", 0)
    with pytest.raises(ValueError, match="not a distribution to draw from"):
        sample_params(Prior(m0=[0.0, 0.0], kappa0=1.0, nu0=3.0, Psi0=np.eye(2), mclust=True),
                      2, 2, "EEI", 0)
    with pytest.raises(TypeError, match="mclust must be True or False, got 'yes'"):
        Prior(mclust="yes")
    with pytest.raises(TypeError, match="GMMParams"):
        prior.log_density("x")


def test_prior_is_immutable(rng):
    prior = make_prior(rng, 2)
    with pytest.raises(AttributeError):
        prior.kappa0 = 3.0
    assert isinstance(sample_params(prior, 3, 2, "full", 0), GMMParams)
