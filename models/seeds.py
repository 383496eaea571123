"""Seeds: one ``numpy.random.SeedSequence`` per call, independent streams spawned from it.

The public names stay as each ecosystem has them (``random_state`` in scikit-learn-style code,
``random_seed`` in the PyMC-style API, ``--seed`` on the command line); inside, a call turns its
seed into one :class:`numpy.random.SeedSequence` and gives every independent consumer (each EM
restart, the sampler, the start points' jitter, the predictive draws) a child of its own with
``seq.spawn(n)``. The same seed gives the same streams, so bit-identical results; no two
consumers share one stream, so adding one does not shift the others.
"""

from __future__ import annotations

import numbers

import numpy as np


def seed_sequence(seed, name="random_seed"):
    """A call's seed as one :class:`numpy.random.SeedSequence`.

    Parameters
    ----------
    seed : None, int, numpy.random.SeedSequence, numpy.random.Generator or numpy.random.RandomState
        None draws fresh entropy from the operating system. A Generator or RandomState gives a
        sequence drawn from it (so it advances).
    name : str
        The argument's public name, for the error message.

    Returns
    -------
    numpy.random.SeedSequence
    """
    if isinstance(seed, np.random.SeedSequence):
        return seed
    if seed is None:
        return np.random.SeedSequence()
    if isinstance(seed, numbers.Integral) and not isinstance(seed, bool):
        if seed < 0:
            raise ValueError(f"{name} must be a non-negative integer, got {seed}.")
        return np.random.SeedSequence(int(seed))
    if isinstance(seed, np.random.Generator):
        return np.random.SeedSequence(seed.integers(2**63, size=2))
    if isinstance(seed, np.random.RandomState):
        return np.random.SeedSequence(seed.randint(2**31, size=4))
    raise TypeError(f"{name} must be None, a non-negative integer, a numpy SeedSequence, "
                    f"Generator or RandomState, got {type(seed).__name__} ({seed!r}).")


def integer_seed(seq):
    """A 32-bit integer drawn from ``seq``, for a library that takes an int seed (scikit-learn).

    Parameters
    ----------
    seq : numpy.random.SeedSequence

    Returns
    -------
    int
    """
    return int(seq.generate_state(1)[0])


def describe(seq):
    """A seed sequence as a results file records it: its integer seed, or entropy and spawn key.

    Parameters
    ----------
    seq : numpy.random.SeedSequence

    Returns
    -------
    int or str
    """
    if not seq.spawn_key and isinstance(seq.entropy, int):
        return seq.entropy
    return f"entropy={seq.entropy} spawn_key={list(seq.spawn_key)}"
