"""pytest plugin: point ``sklearn.mixture.GaussianMixture`` at ``em.GaussianMixture``.

Loaded with ``-p tests.em.sklearn_swap`` before scikit-learn's test module is collected, so the
module's ``from sklearn.mixture import GaussianMixture`` binds this suite's class.
"""

import sklearn.mixture

import em

sklearn.mixture.GaussianMixture = em.GaussianMixture
