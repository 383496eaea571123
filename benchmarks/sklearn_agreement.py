"""em.GaussianMixture against scikit-learn at the defaults: where each stops (not a speed benchmark).

Prints, per data set and model, ``N * (our score - scikit-learn's score)`` (the gap in total
log-likelihood, nats) and both iteration counts. With scikit-learn's meaning of ``tol`` (the
change of the per-sample mean log-likelihood) the gap stays below ``tol * N``.

Usage: ``python benchmarks/sklearn_agreement.py``
"""

import warnings

import sklearn.datasets as ds
from sklearn.mixture import GaussianMixture as SkGaussianMixture

import em

CASES = [("load_wine", 3, "full"), ("load_digits", 10, "diag"), ("load_wine", 4, "diag"),
         ("load_digits", 8, "spherical")]


def main():
    warnings.simplefilter("ignore")
    for loader, K, ct in CASES:
        X = getattr(ds, loader)().data
        ours = em.GaussianMixture(K, covariance_type=ct, random_state=0).fit(X)
        sk = SkGaussianMixture(K, covariance_type=ct, random_state=0).fit(X)
        gap = X.shape[0] * (ours.score(X) - sk.score(X))
        print(f"{loader[5:]:6s} K={K:2d} {ct:9s} total log-lik gap {gap:+9.2f} nats "
              f"(tol * N = {ours.tol * X.shape[0]:.2f})  converged {ours.converged_}  "
              f"n_iter {ours.n_iter_} (scikit-learn {sk.n_iter_})")


if __name__ == "__main__":
    main()
