r"""Online EM (Cappé & Moulines 2009): a stochastic approximation of the sufficient statistics.

Batch EM's iteration is a pass over every row (the E-step and the statistics), then a second half
that turns the statistics into parameters. Online EM sees one block of rows ``X_t`` at a time. It
keeps a running average of the statistics per row,

.. math:: \bar s_t = (1 - \rho_t)\, \bar s_{t-1} + \rho_t\, \frac{s(X_t; \theta_{t-1})}{n_t},
    \qquad \rho_t = (t + \tau_0)^{-\kappa}, \quad \kappa \in (\tfrac12, 1]

(``s(X_t; theta)`` the statistics of the block's responsibilities at the current parameters, as
:func:`em.fit.em_pass` computes them), and applies the same second half to ``n \bar s_t`` for the
``n`` rows seen so far: EM's M-step (``em.GaussianMixture.partial_fit``) or the variational one
(``em.BayesianGaussianMixture.partial_fit``). With ``kappa = 1`` and ``tau0 = 0`` (the
estimators' default) it is the plain running mean of the blocks' statistics; a smaller ``kappa``
forgets early blocks, whose statistics were computed at worse parameters, faster (and follows a
drifting stream). Memory is one block's.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from models.validation import check_positive


def check_schedule(learning_decay, learning_offset):
    """Validate the step-size schedule: ``kappa`` in (0.5, 1], ``tau0 >= 0``.

    Returns
    -------
    (float, float)
    """
    kappa = check_positive(learning_decay, "learning_decay")
    tau0 = check_positive(learning_offset, "learning_offset", allow_zero=True)
    if not 0.5 < kappa <= 1.0:
        raise ValueError(f"learning_decay={learning_decay!r} must lie in (0.5, 1] for the "
                         "stochastic approximation to converge (Cappe & Moulines 2009); 0.7 is "
                         "a common choice.")
    return float(kappa), float(tau0)


def step_size(t, learning_decay, learning_offset):
    r"""``rho_t = (t + tau0)^(-kappa)``, the weight of the t-th block (t = 1, 2, ...)."""
    return float((t + learning_offset) ** -learning_decay)


@dataclasses.dataclass
class RunningStats:
    """The running average of the statistics per row, and how many rows and steps it has seen.

    Attributes
    ----------
    mean : models.features.SufficientStats
        ``s-bar_t``, per (weighted) row, over data centred at ``shift``.
    shift : ndarray of shape (d,)
        The centre, fixed at the first block's.
    n_seen : float
        Rows (weights) seen.
    t : int
        Blocks averaged in after the first.
    """

    mean: object
    shift: np.ndarray
    n_seen: float
    t: int = 0

    @classmethod
    def start(cls, stats, n_rows, shift):
        """From the first block's statistics."""
        return cls(_scaled(stats, 1.0 / n_rows), np.asarray(shift, np.float64), float(n_rows))

    def add(self, stats, n_rows, learning_decay, learning_offset):
        """Average in a block's statistics with weight ``rho_t``; returns ``rho_t``."""
        self.t += 1
        rho = step_size(self.t, learning_decay, learning_offset)
        self.mean = _mix(self.mean, _scaled(stats, 1.0 / n_rows), rho)
        self.n_seen += float(n_rows)
        return rho

    def total(self):
        """``n s-bar_t``: the statistics the second half reads, as if of the ``n`` rows seen."""
        return _scaled(self.mean, self.n_seen)


def _scaled(stats, c):
    return dataclasses.replace(stats, N_k=stats.N_k * c, s=stats.s * c, M=stats.M * c)


def _mix(a, b, rho):
    return dataclasses.replace(a, N_k=(1 - rho) * a.N_k + rho * b.N_k,
                               s=(1 - rho) * a.s + rho * b.s, M=(1 - rho) * a.M + rho * b.M)
