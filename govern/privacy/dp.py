"""Differential privacy for aggregate cells, with OpenDP's discrete Laplace mechanism.

The unit of privacy is one subject's presence in one (cell, hour) for the heatmap and one
travel record for the travel reports: adding or removing it changes a distinct-subject
count by at most 1, a ping count by at most PINGS_PER_SUBJECT_HOUR, and the number of
suppressed groups by at most 1. Each query spends `epsilon` split across what it releases
(REPORT_SHARES); the tenant's daily budget bounds the total.
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


def certified_epsilon(scale: float, sensitivity: int) -> float:
    """What OpenDP certifies for a vector of counts at this scale and L1 sensitivity."""
    return _vector_laplace(scale).map(sensitivity)


def noisy_counts(values: list[int], scale: float) -> list[int]:
    if not values:
        return []
    return list(_vector_laplace(scale)(values))


def noisy_count(value: int, scale: float) -> int:
    return int(_scalar_laplace(scale)(value))


# ---- every report's noise ------------------------------------------------------------------

# Under differential privacy each report's per-query epsilon is split across what it
# releases; travel sums are clamped per record so one record moves a sum by at most this.
MAX_TRIP_M = 50_000
MAX_TRIP_S = 2 * 3600
MAX_DWELL_S = 12 * 3600
DWELL_CANDIDATES = tuple(range(0, MAX_DWELL_S + 1, 300))
REPORT_SHARES = {
    "heatmap": SHARE,
    "travel": {"subjects": 0.25, "trips": 0.15, "stops": 0.15, "distance_m": 0.2,
               "moving_s": 0.15, "suppressed": 0.1},
    "visits": {"subjects": 0.3, "visits": 0.2, "median": 0.2, "p90": 0.2, "suppressed": 0.1},
    "od": {"subjects": 0.5, "trips": 0.4, "suppressed": 0.1},
}
SENSITIVITY = {"subjects": 1, "trips": 1, "stops": 1, "visits": 1, "suppressed": 1,
               "pings": PINGS_PER_SUBJECT_HOUR, "distance_m": MAX_TRIP_M,
               "moving_s": MAX_TRIP_S}


@functools.lru_cache(maxsize=64)
def _quantile(alpha: float, scale: float):
    return dp.m.make_private_quantile(
        dp.vector_domain(dp.atom_domain(T=int)), dp.symmetric_distance(),
        dp.max_divergence(), candidates=list(DWELL_CANDIDATES), alpha=alpha, scale=scale)


def _quantile_scale(alpha: float, epsilon: float) -> float:
    return _quantile(alpha, 1.0).map(1) / epsilon


@dataclass
class Noise:
    """Scales for one report kind at a per-query epsilon, and what OpenDP certifies."""

    scales: dict
    epsilon: float

    @classmethod
    def of(cls, kind: str, eps: float) -> Noise:
        scales, spent = {}, 0.0
        for measure, share in REPORT_SHARES[kind].items():
            if measure in ("median", "p90"):
                alpha = 0.5 if measure == "median" else 0.9
                scales[measure] = _quantile_scale(alpha, eps * share)
                spent += _quantile(alpha, scales[measure]).map(1)
            else:
                sens = SENSITIVITY[measure]
                scales[measure] = sens / (eps * share)
                spent += certified_epsilon(scales[measure], sens)
        return cls(scales, spent)

    def counts(self, measure: str, values: list) -> list[int]:
        return noisy_counts([int(round(v)) for v in values], self.scales[measure])

    def count(self, measure: str, value: int) -> int:
        return noisy_count(int(value), self.scales[measure])

    def quantile(self, measure: str, values: list[int]) -> int:
        alpha = 0.5 if measure == "median" else 0.9
        return int(_quantile(alpha, self.scales[measure])(list(values)))
