"""Differential privacy of aggregate releases, per person-day, with OpenDP.

The unit of privacy is one **person-day**: everything one subject contributes in one UTC
day. Two datasets are neighbours when one has a person-day the other has not (all of that
subject's pings, stops and trips of that day, in every group they fall in).

A release goes in three steps, every one of them here and used by every report
(`govern.domain.release.private`):

1. **Contribution bounding** (`bound`). The report hands over one row per (subject, UTC
   day, group) with that person-day's values in the group. Of each person-day's groups at
   most `m` are kept, chosen uniformly at random (Python's `secrets`-seeded
   `random.SystemRandom`, so the choice cannot be predicted or replayed by an analyst),
   and every value is clamped (`Bounds`). Which groups a person-day keeps depends on that
   person-day alone, so adding or removing it changes at most `m` groups, each by at most 1
   person-day, 1 distinct subject and the clamp of every measure.
2. **Which groups appear** (`select`). Either a fixed public domain (every travel bucket of
   the range, empty ones too: nothing about the data decides which appear), or OpenDP's
   threshold mechanism (`make_laplace_threshold`: discrete Laplace noise on each group's
   person-day count, groups under the threshold dropped) with the threshold chosen so that
   OpenDP's privacy map gives at most `delta` for the (m, m, 1) bound above. A group that
   nobody is in never appears; one resting on one person-day appears with probability at
   most about delta.
3. **Values of the groups that appear** (`noisy_vector`, `quantile`): OpenDP's discrete
   Laplace on each measure (L1 sensitivity m x its clamp) and its private quantile for
   dwell times.

Every epsilon and delta reported is what OpenDP's privacy maps certify for the bound, summed
over the measurements of one answer (basic sequential composition); the tenant's budget
sums answers per data day (govern.domain.release).
"""

from __future__ import annotations

import functools
import random
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import opendp.prelude as dp

dp.enable_features("contrib")

# delta of one answer's partition selection: the chance that a group resting on one
# person-day appears at all is at most about this.
DELTA_PER_QUERY = 1e-6

# Per-record clamps (before the per-person-day clamps of each report's Bounds).
MAX_TRIP_M = 50_000
MAX_TRIP_S = 2 * 3600
MAX_DWELL_S = 12 * 3600
DWELL_CANDIDATES = tuple(range(0, MAX_DWELL_S + 1, 300))

_RNG = random.SystemRandom()


@dataclass(frozen=True)
class Bounds:
    """What one person-day may contribute to one report: at most `m` groups, and in each
    group at most `clamps[measure]` of each measure (dwell times: at most `dwells` of
    them). `shares` split the answer's epsilon: `person_days` (the selection count),
    `subjects`, each measure, and `quantiles` for the dwell times."""

    m: int
    clamps: dict[str, int]
    shares: dict[str, float]
    dwells: int = 0
    public_domain: bool = False


BOUNDS = {
    # a person-day in at most 2 cells (at the asked resolution), 240 pings in each
    "heatmap": Bounds(2, {"pings": 240}, {"person_days": 0.5, "subjects": 0.25,
                                          "pings": 0.25}),
    # a person-day is in one bucket (its day's, or its week's): the buckets are public
    "travel": Bounds(1, {"trips": 10, "stops": 10, "distance_m": 100_000,
                         "moving_s": 4 * 3600},
                     {"person_days": 0.2, "subjects": 0.2, "trips": 0.15, "stops": 0.15,
                      "distance_m": 0.15, "moving_s": 0.15}, public_domain=True),
    # a person-day at at most 2 sites, 6 visits (and dwell times) at each
    "visits": Bounds(2, {"visits": 6}, {"person_days": 0.4, "subjects": 0.2, "visits": 0.2,
                                        "quantiles": 0.2}, dwells=6),
    # a person-day in at most 2 origin-destination pairs, 10 trips in each
    "od": Bounds(2, {"trips": 10}, {"person_days": 0.5, "subjects": 0.25, "trips": 0.25}),
}


@dataclass
class Contribution:
    """One person-day's values in one group, as the report's SQL gives them."""

    subject: object
    day: object
    key: str
    values: dict[str, float]
    dwells: list[int] = field(default_factory=list)


@dataclass
class Group:
    """A group's bounded totals (before noise)."""

    person_days: int = 0
    subjects: set = field(default_factory=set)
    values: dict[str, float] = field(default_factory=lambda: defaultdict(float))
    dwells: list[int] = field(default_factory=list)


def bound(contributions: Iterable[Contribution], bounds: Bounds,
          rng: random.Random = _RNG, enforce: bool = True) -> dict[str, Group]:
    """Keep at most m groups of each person-day (sampled), clamp its values in each, and
    total them per group. `enforce=False` (weakened, tests only) keeps everything."""
    per_day: dict[tuple, list[Contribution]] = defaultdict(list)
    for c in contributions:
        per_day[(c.subject, c.day)].append(c)
    groups: dict[str, Group] = {}
    for (subject, _day), mine in per_day.items():
        if enforce and len(mine) > bounds.m:
            mine = rng.sample(mine, bounds.m)
        for c in mine:
            g = groups.setdefault(c.key, Group())
            g.person_days += 1
            g.subjects.add(subject)
            for measure, v in c.values.items():
                cap = bounds.clamps.get(measure)
                g.values[measure] += min(max(v, 0), cap) if enforce and cap is not None else v
            dwells = c.dwells
            if enforce and len(dwells) > bounds.dwells:
                dwells = rng.sample(dwells, bounds.dwells)
            g.dwells.extend(min(max(int(d), 0), MAX_DWELL_S) for d in dwells)
    return groups


# ---- OpenDP measurements ---------------------------------------------------------------------

_COUNTS = (dp.map_domain(dp.atom_domain(T=str), dp.atom_domain(T=int)),
           dp.l01inf_distance(dp.absolute_distance(T=int)))


@functools.lru_cache(maxsize=256)
def _threshold(scale: float, threshold: int):
    return dp.m.make_laplace_threshold(*_COUNTS, scale=scale, threshold=threshold)


@functools.lru_cache(maxsize=256)
def threshold_for(scale: float, m: int, delta: float) -> int:
    """The smallest integer threshold at which OpenDP's privacy map of the threshold
    mechanism gives at most `delta` for a person-day in m groups (d_in = (m, m, 1))."""
    lo, hi = 1, 2
    while _threshold(scale, hi).map((m, m, 1))[1] > delta:
        lo, hi = hi, hi * 2
    while lo < hi:
        mid = (lo + hi) // 2
        if _threshold(scale, mid).map((m, m, 1))[1] <= delta:
            hi = mid
        else:
            lo = mid + 1
    return hi


@functools.lru_cache(maxsize=256)
def _vector_laplace(scale: float):
    return dp.m.make_laplace(dp.vector_domain(dp.atom_domain(T=int)), dp.l1_distance(T=int),
                             scale=scale)


@functools.lru_cache(maxsize=64)
def _quantile(alpha: float, scale: float):
    return dp.m.make_private_quantile(
        dp.vector_domain(dp.atom_domain(T=int)), dp.symmetric_distance(),
        dp.max_divergence(), candidates=list(DWELL_CANDIDATES), alpha=alpha, scale=scale)


@dataclass
class Plan:
    """The measurements of one answer at a per-query epsilon: scales, the threshold, and
    the (epsilon, delta) OpenDP certifies for one person-day."""

    bounds: Bounds
    scales: dict[str, float]
    threshold: int | None
    epsilon: float
    delta: float

    @classmethod
    def of(cls, bounds: Bounds, eps: float, delta: float = DELTA_PER_QUERY) -> Plan:
        m, scales = bounds.m, {}
        spent_eps = spent_delta = 0.0
        threshold = None
        for measure, share in bounds.shares.items():
            if measure == "quantiles":
                # median and p90 of every group a person-day is in: m groups, each with up
                # to `dwells` of its values (symmetric distance), two quantiles each
                per = sum(_quantile(a, 1.0).map(bounds.dwells) for a in (0.5, 0.9)) * m
                scales[measure] = per / (eps * share)
                spent_eps += sum(_quantile(a, scales[measure]).map(bounds.dwells) * m
                                 for a in (0.5, 0.9))
                continue
            sens = m * (bounds.clamps.get(measure, 1))
            scales[measure] = sens / (eps * share)
            if measure == "person_days" and not bounds.public_domain:
                threshold = threshold_for(scales[measure], m, delta)
                e, d = _threshold(scales[measure], threshold).map((m, m, 1))
                spent_eps += e
                spent_delta += d
            else:
                spent_eps += _vector_laplace(scales[measure]).map(sens)
        return cls(bounds, scales, threshold, spent_eps, spent_delta)

    def select(self, groups: dict[str, Group], domain: Sequence[str] | None = None,
               private: bool = True) -> dict[str, int]:
        """Which groups appear, with their noisy person-day counts: every key of the
        public domain (empty ones too), or the threshold mechanism over the groups with
        data. `private=False` (weakened, tests only): every group with data, with noise."""
        scale = self.scales["person_days"]
        if self.bounds.public_domain:
            keys = list(domain or ())
            return dict(zip(keys, self.noisy(keys, groups, "person_days"), strict=True))
        if not private:
            keys = sorted(groups)
            return dict(zip(keys, self.noisy(keys, groups, "person_days"), strict=True))
        counts = {k: g.person_days for k, g in groups.items()}
        if not counts:
            return {}
        return dict(_threshold(scale, self.threshold)(counts))

    def noisy(self, keys: Sequence[str], groups: dict[str, Group], measure: str) -> list[int]:
        """Discrete Laplace on one measure of the given groups (zero for an empty one)."""
        if not keys:
            return []

        def true(k):
            g = groups.get(k)
            if g is None:
                return 0
            if measure == "person_days":
                return g.person_days
            if measure == "subjects":
                return len(g.subjects)
            return int(round(g.values.get(measure, 0)))

        return list(_vector_laplace(self.scales[measure])([true(k) for k in keys]))

    def quantile(self, alpha: float, values: list[int]) -> int:
        return int(_quantile(alpha, self.scales["quantiles"])(list(values)))

    def answer(self, contributions: Iterable[Contribution], measures: Sequence[str] = (),
               domain: Sequence[str] | None = None, enforce_bounds: bool = True,
               private_selection: bool = True,
               rng: random.Random = _RNG) -> tuple[dict[str, dict], dict[str, Group]]:
        """The whole mechanism of one answer: bound, select, noise. Per group that appears
        (in domain order, else by key): its noisy person-days, subjects and measures; and
        the bounded groups (for the dwell quantiles of those that appear)."""
        groups = bound(contributions, self.bounds, rng, enforce=enforce_bounds)
        selected = self.select(groups, domain, private=private_selection)
        keys = [key for key in (domain or sorted(selected)) if key in selected]
        noisy = {m: self.noisy(keys, groups, m) for m in ("subjects", *measures)}
        out = {}
        for i, key in enumerate(keys):
            out[key] = {m: max(int(noisy[m][i]), 0) for m in noisy}
            out[key]["person_days"] = max(int(selected[key]), 0)
        return out, groups

