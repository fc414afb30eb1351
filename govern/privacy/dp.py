"""Differential privacy for aggregate cells, with OpenDP's discrete Laplace mechanism.

The unit of privacy is one subject's presence in one (cell, hour): adding or removing it
changes a cell's distinct-subject count by at most 1, its ping count by at most
PINGS_PER_SUBJECT_HOUR, and the number of suppressed cells by at most 1. Each query spends
`epsilon` split across the three releases; the tenant's daily budget bounds the total.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import opendp.prelude as dp

dp.enable_features("contrib")

# A phone pinging every 10 s for a whole hour: the most one subject adds to a cell-hour.
PINGS_PER_SUBJECT_HOUR = 360
SHARE = {"subjects": 0.5, "pings": 0.4, "suppressed": 0.1}


@functools.lru_cache(maxsize=64)
def _vector_laplace(scale: float):
    space = (dp.vector_domain(dp.atom_domain(T=int)), dp.l1_distance(T=int))
    return dp.m.make_laplace(*space, scale=scale)


@functools.lru_cache(maxsize=64)
def _scalar_laplace(scale: float):
    return dp.m.make_laplace(dp.atom_domain(T=int), dp.absolute_distance(T=int), scale=scale)


@dataclass(frozen=True)
class Scales:
    subjects: float
    pings: float
    suppressed: float

    @classmethod
    def for_epsilon(cls, epsilon: float) -> Scales:
        return cls(subjects=1 / (epsilon * SHARE["subjects"]),
                   pings=PINGS_PER_SUBJECT_HOUR / (epsilon * SHARE["pings"]),
                   suppressed=1 / (epsilon * SHARE["suppressed"]))


def epsilon_spent(scales: Scales) -> float:
    """The epsilon OpenDP certifies for the three releases together (sequential composition)."""
    return (_vector_laplace(scales.subjects).map(1)
            + _vector_laplace(scales.pings).map(PINGS_PER_SUBJECT_HOUR)
            + _scalar_laplace(scales.suppressed).map(1))


def certified_epsilon(scale: float, sensitivity: int) -> float:
    """What OpenDP certifies for a vector of counts at this scale and L1 sensitivity."""
    return _vector_laplace(scale).map(sensitivity)


def noisy_counts(values: list[int], scale: float) -> list[int]:
    if not values:
        return []
    return list(_vector_laplace(scale)(values))


def noisy_count(value: int, scale: float) -> int:
    return int(_scalar_laplace(scale)(value))
