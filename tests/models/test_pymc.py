import itertools
import json

import arviz as az
import numpy as np
import pymc as pm
import pytensor
import pytensor.tensor as pt
import pytest
from scipy import stats
from scipy.special import logsumexp

import em
from models import SKLEARN_TYPES, GMMParams, Prior, load_faithful, load_iris, simulate
from models import pymc as gmm_pymc
from models.results import point_to_params, relabel
from reports import joint
from tests.conftest import random_params
from tests.shared.helpers import EVAL


def test_invwishart_logp_matches_scipy(rng):
    d = 3
    A = rng.normal(size=(d, d))
    Psi = A @ A.T + np.eye(d)
    nu = 6.5
    with pm.Model() as model:
        gmm_pymc.InverseWishart("Sigma", nu, Psi, shape=(4, d, d))
    logp = model.compile_logp(jacobian=False, sum=False, **EVAL)
    values = stats.invwishart(nu, Psi).rvs(size=4, random_state=1)
    tr = gmm_pymc.CholeskyLogDiag(d)
    u = pytensor.function([S := pt.tensor3()], tr.forward(S), **EVAL)(values)
    ours = logp({"Sigma_cholesky_log_diag__": u})[0]
    np.testing.assert_allclose(ours, stats.invwishart(nu, Psi).logpdf(values.transpose(1, 2, 0)),
                               rtol=1e-10)


def test_invwishart_draws_match_scipy_moments():
    d, nu = 2, 12.0  # heavy tails: nu - d - 7 > 0 keeps the 4th moment (variance SE) finite
    Psi = np.array([[2.0, 0.6], [0.6, 1.0]])
    with pm.Model():
        S = gmm_pymc.InverseWishart("Sigma", nu, Psi)
        draws = pm.draw(S, draws=40_000, random_seed=3)
    ref = stats.invwishart(nu, Psi)
    n = draws.shape[0]
    se = draws.std(0) / np.sqrt(n)
    assert np.all(np.abs(draws.mean(0) - ref.mean()) < 5 * se)
    # variance of the diagonal entries: Var(S_ii) = 2 Psi_ii^2 / ((nu-d-1)^2 (nu-d-3))
    var_ii = 2 * np.diag(Psi) ** 2 / ((nu - d - 1) ** 2 * (nu - d - 3))
    np.testing.assert_allclose(draws[:, [0, 1], [0, 1]].var(0), var_ii, rtol=0.06)
    np.testing.assert_allclose(var_ii, np.diag(ref.var()), rtol=1e-12)


def test_cholesky_transform_roundtrip_and_jacobian(rng):
    d = 3
    tr = gmm_pymc.CholeskyLogDiag(d)
    u_sym = pt.vector()
    back = pytensor.function([u_sym], tr.backward(u_sym), **EVAL)
    jac = pytensor.function([u_sym], tr.log_jac_det(u_sym), **EVAL)
    S_sym = pt.matrix()
    fwd = pytensor.function([S_sym], tr.forward(S_sym), **EVAL)
    u = rng.normal(size=d * (d + 1) // 2)
    Sigma = back(u)
    np.testing.assert_allclose(fwd(Sigma), u, rtol=1e-10, atol=1e-12)
    # numerical Jacobian of the map u -> lower triangle of Sigma
    rows, cols = np.tril_indices(d)
    h = 1e-6
    J = np.column_stack([(back(u + h * e)[rows, cols] - back(u - h * e)[rows, cols]) / (2 * h)
                         for e in np.eye(u.size)])
    assert jac(u) == pytest.approx(np.log(abs(np.linalg.det(J))), rel=1e-6)


@pytest.mark.parametrize("covariance_type", SKLEARN_TYPES)
def test_explicit_and_marginal_models_agree(covariance_type):
    rng = np.random.default_rng(0)
    K, d, N = 2, 2, 5
    X = rng.normal(size=(N, d)) * 2
    prior = Prior.default(X, K, covariance_type)
    params = random_params(rng, K, d, covariance_type, spread=1.0)
    marginal = gmm_pymc.build_model(X, K, covariance_type, prior, latent="marginal")
    explicit = gmm_pymc.build_model(X, K, covariance_type, prior, latent="explicit")
    lp_m = marginal.compile_logp(jacobian=False, **EVAL)(gmm_pymc.value_point_function(marginal)(params))
    lp_e = explicit.compile_logp(jacobian=False, **EVAL)
    base = gmm_pymc.value_point_function(explicit)(params)
    terms = [lp_e({**base, "z": np.array(z)}) for z in itertools.product(range(K), repeat=N)]
    assert logsumexp(terms) == pytest.approx(float(lp_m), rel=1e-10)
    # and both equal the NumPy density
    expected = params.log_pdf(X).sum() + prior.log_density(params)
    assert float(lp_m) == pytest.approx(expected, rel=1e-10)


@pytest.fixture(scope="module")
def faithful_posterior():
    X, _ = load_faithful()
    prior = Prior.default(X, 2, "full")
    dt = joint.sample(X, 2, "full", prior=prior, draws=1000, tune=1000, chains=4,
                         random_seed=0, posterior_predictive=True)
    return X, prior, dt


def _check_convergence(dt):
    summ = az.summary(dt, var_names=["pi", "mu", "Sigma"])
    assert summ["r_hat"].max() <= 1.01, summ
    assert summ["ess_bulk"].min() >= 400, summ
    assert int(dt["sample_stats"]["diverging"].sum()) == 0


@pytest.mark.slow
def test_faithful_sampling_converges(faithful_posterior):
    X, prior, dt = faithful_posterior
    _check_convergence(dt)
    for group in ("posterior", "sample_stats", "observed_data", "log_likelihood",
                  "posterior_predictive"):
        assert group in dt.children
    gamma = dt["responsibilities"]["gamma"]
    assert gamma.shape == (272, 2)
    np.testing.assert_allclose(gamma.sum("component"), 1.0, rtol=1e-12)
    # Rao-Blackwellised: the average over draws of p(z_n = k | x_n, theta)
    post = dt["posterior"]
    p = point_to_params({v: post[v].values[2, 10] for v in ("pi", "mu", "Sigma")}, "full")
    assert np.all(np.abs(p.responsibilities(X) - gamma.values).max() < 0.5)
    summ_all = az.summary(dt)  # every posterior variable reduces over (chain, draw)
    assert set(summ_all.index) >= {"pi[0]", "mu[1, 1]"}
    assert dt["log_likelihood"]["x"].shape == (4, 1000, 272)
    assert dt["sample_stats"]["label_permutation"].shape == (4, 1000, 2)
    loo = az.loo(dt)
    assert np.isfinite(loo.elpd)
    assert dt.attrs["random_seed"] == 0 and "pymc=" in dt.attrs["versions"]


@pytest.mark.slow(cpu_s=15)
def test_overlapping_clusters_converge():
    truth = GMMParams([0.3, 0.3, 0.4], [[0.0, 0.0], [2.5, 0.0], [1.2, 2.2]],
                      np.stack([np.eye(2)] * 3))
    X, _ = simulate(truth, 1500, np.random.default_rng(1))
    prior = Prior.default(X, 3, "full")
    # the default call runs until the label-invariant checks pass, and says so
    dt = joint.sample(X, 3, "full", prior=prior, chains=4, random_seed=1)
    assert dt.attrs["converged"] == 1 and dt.attrs["convergence"].startswith("converged")
    _check_convergence(dt)
    # a fixed short run on the same overlapping clusters does not mix, and says that plainly
    short = joint.sample(X, 3, "full", prior=prior, draws=500, tune=500, chains=4,
                         random_seed=1)
    assert short.attrs["converged"] == 0
    assert "not converged" in short.attrs["convergence"]


# arviz_plots aligns the EM tree (chain = 1) with the MCMC tree (chain = 4) by an outer join, which
# xarray announces will change; the result here does not depend on it.
@pytest.mark.filterwarnings("ignore:In a future version of xarray the default value for join")
def test_em_and_mcmc_datatrees_work_together(faithful_posterior):
    import arviz_plots as azp
    import matplotlib

    matplotlib.use("Agg")
    X, prior, dt = faithful_posterior
    res = em.fit(X, 2, prior=prior)
    em_dt = joint.em_to_datatree(res, X)
    assert em_dt["posterior"]["mu"].shape == (1, 1, 2, 2)
    np.testing.assert_allclose(em_dt["responsibilities"]["gamma"], res.gamma, rtol=1e-10)
    assert em_dt.attrs["log_posterior"] == pytest.approx(res.log_posterior)
    pc = azp.plot_forest({"EM": em_dt, "NUTS": dt}, var_names=["pi", "mu"], combined=True,
                         backend="matplotlib")
    assert pc is not None
    summ = az.summary(dt, var_names=["pi", "mu", "Sigma"])
    em_summ = az.summary(em_dt, var_names=["pi", "mu", "Sigma"], kind="stats")
    assert list(summ.index) == list(em_summ.index)
    # EM MAP and posterior mean agree within a few posterior sds
    z = (em_summ["mean"] - summ["mean"]).abs() / summ["sd"]
    assert z.max() < 1.0
    matplotlib.pyplot.close("all")


def test_relabel_undoes_label_switching(faithful_posterior):
    X, prior, dt = faithful_posterior
    post = dt["posterior"].to_dataset()
    swapped = post.copy()
    for v in ("pi", "mu", "Sigma"):
        arr = post[v].values.copy()
        arr[1] = arr[1][:, ::-1]  # chain 1 with its labels swapped
        swapped[v] = (post[v].dims, arr)
    groups = {g: dt[g].to_dataset() for g in dt.children}
    groups["posterior"] = swapped
    import xarray as xr

    bad = xr.DataTree.from_dict(groups)
    ref = em.fit(X, 2, prior=prior).params
    fixed = relabel(bad, ref)
    np.testing.assert_allclose(fixed["posterior"]["mu"].values, post["mu"].values)
    perm = fixed["sample_stats"]["label_permutation"].values
    assert (perm[1] == [1, 0]).all() and (perm[0] == [0, 1]).all()


def test_sample_z_and_model_cache():
    X, _ = load_faithful()
    prior = Prior.default(X, 2, "diag")
    dt = joint.sample(X, 2, "diag", prior=prior, draws=50, tune=100, chains=1,
                         random_seed=2, sample_z=True)
    z = dt["posterior"]["z"].values
    assert z.shape == (1, 50, 272)
    # sampled z agree with the Rao-Blackwellised responsibilities
    freq = (z == 1).mean(axis=(0, 1))
    assert np.abs(freq - dt["responsibilities"]["gamma"].values[:, 1]).mean() < 0.05
    model = gmm_pymc.cached_model(gmm_pymc.check_inputs(X, 2, "diag", prior))
    assert gmm_pymc.cached_model(gmm_pymc.check_inputs(X + 0.1, 2, "diag", prior)) is model


@pytest.mark.parametrize(
    ("kwargs", "exc", "match"),
    [
        (dict(X=np.array([[np.nan, np.nan], [1.0, 2.0], [2.0, 1.0]])), ValueError,
         "no observed value in row 0"),
        (dict(X=np.array([[np.inf, 1.0], [1.0, 2.0], [2.0, 1.0]])), ValueError, "inf at row 0"),
        (dict(n_components=0), ValueError, "n_components == 0, must be > 0"),
        (dict(prior=Prior.default(np.random.default_rng(0).normal(size=(20, 3)), 2)), ValueError,
         "d=3 features but the data have d=2"),
        (dict(draws=0), ValueError, "draws must be an integer >= 1"),
        (dict(prior=None), ValueError, "posterior is improper"),
        (dict(sampler="stan"), ValueError, "sampler='stan'"),
    ],
)
def test_sample_bad_input(kwargs, exc, match):
    X, _ = load_faithful()
    args = dict(X=X, n_components=2, prior=Prior.default(X, 2), draws=10, tune=10, chains=1)
    args.update(kwargs)
    with pytest.raises(exc, match=match):
        joint.sample(**args)


def test_build_model_bad_input():
    X, _ = load_faithful()
    with pytest.raises(ValueError, match="latent='implicit'"):
        gmm_pymc.build_model(X, 2, latent="implicit")
    with pytest.raises(ValueError, match="covariance_type='fll'"):
        gmm_pymc.build_model(X, 2, "fll")
    with pytest.raises(ValueError, match=r"Prior\(mclust=True\) reproduces mclust's EM"):
        gmm_pymc.build_model(X, 2, "EEI", Prior.default(X, 2, "EEI", mclust=True))


def test_em_datatree_takes_a_dataframes_column_names():
    import pandas as pd

    X, names, _ = load_iris()
    frame = pd.DataFrame(X, columns=names)
    dt = joint.em_to_datatree(em.fit(X, 3), frame)
    assert list(dt["posterior"]["feature"].values) == names
    table = az.summary(dt, var_names=["mu"], coords={"feature": ["petal length (cm)"]},
                       kind="stats")
    assert list(table.index) == [f"mu[{k}, petal length (cm)]" for k in range(3)]
    np.testing.assert_allclose(table["mean"], em.fit(X, 3).params.mu[:, 2], rtol=1e-12)


_FIRST_POSTERIOR = """
import hashlib, json, os, sys, warnings
warnings.simplefilter("ignore")
import numpy as np
from models import Prior, load_faithful
from reports import joint
X, _ = load_faithful()
ct = sys.argv[3]
for cores in json.loads(sys.argv[2]):
    seed = None if os.environ.get("GMM_TEST_UNSEEDED") else 3       # the check's mutation
    dt = joint.sample(X, 2, ct, prior=Prior.default(X, 2, ct), draws=150, tune=150, chains=2,
                      random_seed=seed, sampler=sys.argv[1], cores=cores)
    post = dt["posterior"]
    print(json.dumps({"cores": dt.attrs.get("cores"),
                      "mu_mean": post["mu"].values.mean(axis=(0, 1)).ravel().tolist(),
                      "sha1": hashlib.sha1(b"".join(np.ascontiguousarray(post[v].values).tobytes()
                                                   for v in ("pi", "mu", "Sigma"))).hexdigest()}))
"""


def _cold_then_warm(sampler, folder, cores=((None,), (None,)), covariance_type="full"):
    """Two fresh processes: the first with empty PyTensor, numba and JAX caches, the second with
    what the first left. ``cores`` gives each process's runs (one ``sample`` call per entry).
    Returns every run's record (cores, mu_mean, sha1), the cold process's first."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    env = dict(os.environ, PYTENSOR_FLAGS=f"base_compiledir={folder}/pytensor",
               NUMBA_CACHE_DIR=str(folder / "numba"), JAX_COMPILATION_CACHE_DIR=str(folder / "jax"),
               XDG_CACHE_HOME=str(folder / "xdg"),
               PYTHONPATH=str(Path(__file__).resolve().parents[2]))
    runs = []
    for process in cores:
        out = subprocess.run([sys.executable, "-c", _FIRST_POSTERIOR, sampler,
                              json.dumps(list(process)), covariance_type], env=env,
                             capture_output=True, text=True)
        assert out.returncode == 0, out.stderr[-3000:]
        runs += [json.loads(line) for line in out.stdout.splitlines() if line.startswith("{")]
    # PyTensor keeps its numba-compiled programs in its own folder; the Gibbs route's loops are
    # numba's own (NUMBA_CACHE_DIR)
    cache = folder / {"c": "pytensor", "numba": "pytensor/numba", "nutpie": "pytensor/numba",
                      "gibbs": "numba"}.get(sampler, "jax")
    assert any(cache.iterdir()), f"{sampler}: the first run left no compiled program"
    return runs


# the routes that compile with JAX (seconds from empty caches); numba, c and nutpie on numba take
# minutes: the slow tests below
JAX_COMPILED = (*(r.name for r in gmm_pymc.ROUTES.values() if r.vectorises and not r.adapts),
                "nutpie-jax")


# the Gibbs route compiles its few loops with numba (seconds from an empty cache)
@pytest.mark.parametrize("sampler", ("gibbs", *JAX_COMPILED))
def test_same_seed_same_draws_with_an_empty_and_a_filled_cache(sampler, tmp_path):
    cold, warm = _cold_then_warm(sampler, tmp_path)
    assert cold["sha1"] == warm["sha1"]


# numba, c and nutpie each compile for a minute or more from empty caches (slow, and each its own
# test so that the parallel run spreads them). They run the diagonal model: its graph compiles in
# about a quarter of the full model's time (c: 38 s against 130 s from empty caches), and the
# full model's cold and warm runs are compared on the routes above. The numba route's warm
# process also runs its chains in 2 processes and then in 1 again (reusing the compiled step
# after the parallel run): the cores change no draw either.
PYTENSOR_ROUTES = {"c": ((None,), (None,)), "numba": ((1,), (2, 1)), "nutpie": ((None,), (None,))}


@pytest.fixture(scope="module")
def faithful_diag_posterior():
    X, _ = load_faithful()
    return joint.sample(X, 2, "diag", prior=Prior.default(X, 2, "diag"), draws=1000, tune=500,
                        chains=4, random_seed=0)


@pytest.mark.parametrize("sampler", [
    pytest.param("c", marks=pytest.mark.slow(cpu_s=45)),
    pytest.param("numba", marks=pytest.mark.slow(cpu_s=45)),
    pytest.param("nutpie", marks=pytest.mark.slow(cpu_s=45)),
])
def test_same_seed_same_draws_with_an_empty_and_a_filled_cache_on_pytensors_routes(
        sampler, tmp_path, faithful_diag_posterior):
    runs = _cold_then_warm(sampler, tmp_path, PYTENSOR_ROUTES[sampler], "diag")
    assert len({run["sha1"] for run in runs}) == 1, runs
    if sampler == "numba":
        assert [run["cores"] for run in runs] == [1, 2, 1]
    # The route's posterior means of mu (2 x 150 draws) sit within 0.5 posterior sd of the
    # default route's (4 x 1000; 5 Monte Carlo standard errors of 300 draws are about 0.3 sd),
    # components in the order of mu[:, 0] (the runs start from EM with other seeds, so their
    # labels may be the reference's swapped)
    assert _means_agree(runs[0], faithful_diag_posterior), (sampler, runs[0])


def _means_agree(run, reference):
    mu = reference["posterior"]["mu"].values
    ref_mean, ref_sd = mu.mean(axis=(0, 1)), mu.std(axis=(0, 1))
    order = np.argsort(ref_mean[:, 0])
    ref_mean, ref_sd = ref_mean[order], ref_sd[order]
    mean = np.array(run["mu_mean"]).reshape(2, 2)
    mean = mean[np.argsort(mean[:, 0])]
    return bool(np.all(np.abs(mean - ref_mean) < 0.5 * ref_sd))


def test_the_cold_and_warm_check_detects_what_it_checks(tmp_path, monkeypatch,
                                                         faithful_diag_posterior):
    # the check's power, on the cheap Gibbs route: runs that do not fix their seed differ
    # between the two processes, and a posterior of other data is told from the reference
    runs = _cold_then_warm("gibbs", tmp_path, covariance_type="diag")
    assert runs[0]["sha1"] == runs[1]["sha1"] and _means_agree(runs[0], faithful_diag_posterior)
    shifted = faithful_diag_posterior.copy()
    shifted["posterior"]["mu"] = faithful_diag_posterior["posterior"]["mu"] * 1.05
    assert not _means_agree(runs[0], shifted)           # means 5 % off
    monkeypatch.setenv("GMM_TEST_UNSEEDED", "1")
    unseeded = _cold_then_warm("gibbs", tmp_path / "unseeded", covariance_type="diag")
    assert unseeded[0]["sha1"] != unseeded[1]["sha1"]


@pytest.mark.parametrize("sampler", [s for s in JAX_COMPILED if s != gmm_pymc.DEFAULT_SAMPLER])
def test_every_route_finds_the_default_routes_posterior(sampler, faithful_posterior):
    # here the JAX-compiled NUTS routes at 4 x 500 against the default (Gibbs, 4 x 1000); numba,
    # c and nutpie (each a cold compile of a minute or more) are checked against the default in
    # the slow determinism tests above
    X, prior, reference = faithful_posterior
    # the reference's start (EM from random_state 0): the same labels
    dt = joint.sample(X, 2, "full", prior=prior, init=joint.em_start(X, 2, "full", prior),
                      draws=500, tune=500, chains=4, random_seed=1, sampler=sampler)
    summ = az.summary(dt, var_names=["pi", "mu", "Sigma"], round_to="none")
    assert summ["r_hat"].max() <= 1.01 and summ["ess_bulk"].min() >= 400, summ
    ref = az.summary(reference, var_names=["pi", "mu", "Sigma"], round_to="none")
    # posterior means agree within 5 Monte Carlo standard errors of the difference
    se = np.hypot(summ["mcse_mean"], ref["mcse_mean"])
    assert (np.abs(summ["mean"] - ref["mean"]) <= 5 * se).all(), (summ["mean"] - ref["mean"]) / se


def test_cores_bad_input():
    X, _ = load_faithful()
    with pytest.raises(ValueError, match="cores must be an integer >= 1"):
        joint.sample(X, 2, "full", prior=Prior.default(X, 2), draws=5, tune=5, chains=1, cores=0)


def test_compiling_is_announced(capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    monkeypatch.delenv("JAX_COMPILATION_CACHE_DIR", raising=False)
    X, _, _ = load_iris()
    prior = Prior.default(X, 2)
    for _ in range(2):
        joint.sample(X, 2, "full", prior=prior, draws=5, tune=5, chains=1, progressbar=True,
                     sampler="blackjax")
    err = capsys.readouterr().err
    assert "compiling the model for K = 2, d = 4, full; first time for this shape" in err
    assert "compiling the model for K = 2, d = 4, full; compiled before" in err


def test_sample_batch_samples_each_data_sets_own_posterior():
    # two data sets of one shape in one program: each replicate's draws sit at its own mode
    X, _ = load_faithful()
    Xs = np.stack([X, X[::-1] * [1.0, 0.5]])
    prior = Prior.default(X, 2)
    inits = [joint.em_start(x, 2, "full", prior) for x in Xs]
    post = gmm_pymc.sample_batch(Xs, 2, "full", prior, inits, draws=200, tune=200, chains=2,
                                 random_seed=4)
    assert post["mu"].dims == ("replicate", "chain", "draw", "component", "feature")
    assert post["mu"].shape == (2, 2, 200, 2, 2) and post["Sigma"].shape == (2, 2, 200, 2, 2, 2)
    for r, init in enumerate(inits):
        mean = post["mu"].values[r].mean(axis=(0, 1))
        sd = post["mu"].values[r].std(axis=(0, 1))
        assert np.all(np.abs(mean - init.mu) < 3 * sd), (r, mean, init.mu, sd)
    assert int(post["diverging"].sum()) == 0
    with pytest.raises(ValueError, match=r"Xs must have shape \(R, N, d\)"):
        gmm_pymc.sample_batch(X, 2, "full", prior, inits)
    with pytest.raises(ValueError, match="inits has 1 starting points for 2 data sets"):
        gmm_pymc.sample_batch(Xs, 2, "full", prior, inits[:1])


def test_prior_predictive_groups_hold_the_priors_draws():
    # sample(prior_predictive=True) adds the explicit model's prior and prior predictive draws
    # (models.pymc.add_prior_predictive, compiled with PRIOR_PREDICTIVE_COMPILE): data sets of
    # the data's shape, whatever the data's values; weights on the simplex, covariances PD, and
    # the mean of pi the Dirichlet's
    X, _ = load_faithful()
    X = X[:40]
    prior = Prior.default(X, 2, "full")
    dt = gmm_pymc.sample(X, 2, "full", prior=prior, init=em.fit(X, 2, prior=prior).params,
                         draws=500, tune=100, chains=2, random_seed=0, prior_predictive=True)
    pri, ppd = dt["prior"], dt["prior_predictive"]
    assert ppd["x"].shape == (1, 500, 40, 2)
    assert np.isfinite(ppd["x"].values).all()
    pi, Sigma = pri["pi"].values[0], pri["Sigma"].values[0]
    np.testing.assert_allclose(pi.sum(-1), 1.0)
    assert (np.linalg.eigvalsh(Sigma) > 0).all()
    alpha = prior.alpha_for(2)
    np.testing.assert_allclose(pi.mean(0), alpha / alpha.sum(), atol=0.05)
