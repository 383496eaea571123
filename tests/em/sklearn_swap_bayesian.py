"""pytest plugin: point ``sklearn.mixture.BayesianGaussianMixture`` at ``em.BayesianGaussianMixture``.

Loaded with ``-p tests.em.sklearn_swap_bayesian`` before scikit-learn's test module is collected,
so the module's ``from sklearn.mixture import BayesianGaussianMixture`` binds this suite's class.
"""

import sklearn.mixture

import em

sklearn.mixture.BayesianGaussianMixture = em.BayesianGaussianMixture
