import numpy as np
import pytest

from models import FAMILIES, MCLUST_NAMES, SKLEARN_TYPES, GMMParams, family
from tests.conftest import random_params


def test_registry_names_and_aliases():
    assert MCLUST_NAMES == ("EII", "VII", "EEI", "VEI", "EVI", "VVI", "EEE", "VEE", "EVE", "VVE",
                            "EEV", "VEV", "EVV", "VVV")
    for alias, name in zip(SKLEARN_TYPES, ("VVV", "EEE", "VVI", "VII")):
        assert family(alias) is family(name)
    assert [f.name for f in FAMILIES if f.has_map] == [
        "EII", "VII", "EEI", "VEI", "EVI", "VVI", "EEE", "EEV", "VEV", "VVV"]   # as in mclust
    with pytest.raises(ValueError, match="'XYZ' is not supported.*EII, VII"):
        family("XYZ")


@pytest.mark.parametrize("name", MCLUST_NAMES)
@pytest.mark.parametrize("d", [1, 3])
def test_decomposition_rebuilds_sigma_and_obeys_the_letters(name, d, rng):
    K = 3
    p = random_params(rng, K, d, name)
    scale, shape, D = p.decomposition()
    rebuilt = np.einsum("kij,kj,klj->kil", D, scale[:, None] * shape, D)
    np.testing.assert_allclose(rebuilt, p.to_full().Sigma, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(np.prod(shape, axis=1), 1.0, rtol=1e-10)
    fam = family(name)
    if fam.volume == "E":
        np.testing.assert_allclose(scale, scale[0], rtol=1e-10)
    if fam.shape == "E":
        np.testing.assert_allclose(shape, np.broadcast_to(shape[0], shape.shape), rtol=1e-8)
    if fam.shape == "I" or d == 1:
        np.testing.assert_allclose(shape, 1.0, rtol=1e-10)
    if fam.orientation == "I":
        np.testing.assert_array_equal(D, np.broadcast_to(np.eye(d), D.shape))


LOOSE = {"spherical": "VII", "diag": "VVI", "full": "VVV"}


@pytest.mark.parametrize("name", [n for n in MCLUST_NAMES
                                  if n not in LOOSE.values() and family(n).storage.name in LOOSE])
def test_params_refuse_sigma_breaking_the_constraints(name, rng):
    # the storage's unconstrained family's covariances break the family's constraints
    Sigma = random_params(rng, 3, 3, LOOSE[family(name).storage.name]).Sigma
    with pytest.raises(ValueError, match=f"covariance_type='{name}' has one"):
        GMMParams(np.full(3, 1 / 3), np.zeros((3, 3)), Sigma, name)


def test_n_cov_parameters_by_the_letters():
    d, K = 4, 3
    counts = {f.name: f.n_cov_parameters(K, d) for f in FAMILIES}
    assert counts == {"EII": 1, "VII": 3, "EEI": 4, "VEI": 6, "EVI": 10, "VVI": 12, "EEE": 10,
                      "VEE": 12, "EVE": 16, "VVE": 18, "EEV": 22, "VEV": 24, "EVV": 28,
                      "VVV": 30}
