"""Pure rules of exact (noise-free) aggregate releases: which periods may be released and
when, where the retention edge falls, which cells pass the k floor, and which candidate
groups complementary suppression must withhold. No database, no clock: `now` is passed in.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache

from govern.policy.cutoffs import aggregate_window_start
from govern.policy.periods import next_month

DAY = dt.timedelta(days=1)
# A released group is never computed when a group it could be differenced against might
# start before the retention edge: the longest period (a month) plus the week that can
# straddle it.
EDGE_MARGIN = dt.timedelta(days=38)

# Why something was withheld, in words an analyst understands.
REASONS = {
    "below_k": "fewer than {k} distinct people",
    "sticky": "a day of the period has fewer than {k} distinct people there",
    "complementary": "withheld so that it cannot be subtracted from figures already "
                     "released to recover a group of fewer than {k} people",
    "difference": "withheld because its count of distinct people, compared with the "
                  "count of a place or period that contains it or that it contains, "
                  "would tell how many people (fewer than {k}) were in one but not the "
                  "other, or in more than one of the parts that make it up",
    "past_retention": "this period is older than the aggregate retention "
                      "({days} days); its figures are no longer kept",
    "near_retention_edge": "this period was never released and is too close to the "
                           "aggregate retention edge to be released safely now",
}

# Under differential privacy (govern.privacy.dp): the k floor judges the noisy count, and
# groups are chosen by a private threshold, so how many were left out is not said.
DP_REASONS = {
    "below_k": "its noisy count of distinct people was under {k}",
    "below_threshold": "places and groups appear only when their noisy count of person-days "
                       "(one person on one day) reaches {threshold}; how many stayed under "
                       "it is not said, since that number would itself tell about people",
}


def aligned_period(t_from: dt.datetime, t_to: dt.datetime) -> str | None:
    """'day', 'week' (ISO, Monday to Monday) or 'month' when the range is exactly one, in
    UTC; else None."""
    a, b = t_from.astimezone(dt.UTC), t_to.astimezone(dt.UTC)
    if a.time() != dt.time(0) or b.time() != dt.time(0):
        return None
    days = (b.date() - a.date()).days
    if days == 1:
        return "day"
    if days == 7 and a.weekday() == 0:
        return "week"
    if a.day == 1 and b.date() == next_month(a).date():
        return "month"
    return None


def settled_at(t_to: dt.datetime, delay_hours: int) -> dt.datetime:
    """When a period ending at `t_to` may first be released: after it has closed and the
    settling delay for late uploads has passed."""
    return t_to + dt.timedelta(hours=delay_hours)


def days_of(t_from: dt.datetime, t_to: dt.datetime) -> list[dt.datetime]:
    """The UTC day starts of an aligned range."""
    out, d = [], t_from.astimezone(dt.UTC)
    while d < t_to:
        out.append(d)
        d += DAY
    return out


def retention_cutoff(now: dt.datetime, retention_days: int) -> dt.datetime:
    """Aggregate retention, aligned to whole UTC days: a day is kept while all of it is
    within the window."""
    edge = aggregate_window_start(retention_days, now).astimezone(dt.UTC)
    start = dt.datetime.combine(edge.date(), dt.time(0), dt.UTC)
    return start if start == edge else start + DAY


def retention_state(t_from: dt.datetime, now: dt.datetime, retention_days: int,
                    released_before: bool) -> str | None:
    """None when the period may be served; else the reason it is withheld whole. A period
    already released is served while all of it is within retention; one never released is
    computed only while every period it could be differenced against is too."""
    cutoff = retention_cutoff(now, retention_days)
    if t_from < cutoff:
        return "past_retention"
    if not released_before and t_from < cutoff + EDGE_MARGIN:
        return "near_retention_edge"
    return None


def window_bits(starts: Iterable[tuple[int, dt.datetime]], day: dt.datetime) -> int:
    """The purpose bits (bit, window start now) whose window holds the whole day: a record
    counts for a day either under all of it or not at all, never up to a moving edge."""
    return sum(1 << bit for bit, start in starts if day >= start)


def passes_floor(subjects: int, min_day_subjects: int, k: int) -> str | None:
    """None when a group passes the primary rule, else why not: k distinct subjects, and k
    on every day it has data (sticky, so a period never exposes a small day)."""
    if subjects < k:
        return "below_k"
    if min_day_subjects < k:
        return "sticky"
    return None


@dataclass(frozen=True)
class Region:
    """A cell of the Venn diagram of released groups: basis atoms that lie in exactly the
    same released groups (`groups`), and the distinct subjects among them."""

    groups: frozenset[int]
    subjects: int


def complementary(regions: Iterable[Region], pending: set[int], k: int) -> set[int]:
    """Candidate groups to withhold so that no region rests on 1 to k-1 subjects.

    Every set an analyst can compute from released numbers by adding and subtracting them
    is a union of regions, so if each region has none or at least k subjects, so does
    every difference. A region in a candidate group is merged away by withholding that
    candidate; a region in previously released groups only (a candidate took atoms out of
    it) by withholding the candidates that did. Withholding only merges regions, and a
    merge of safe regions is safe, so repeating this until nothing is returned terminates
    at worst with every candidate withheld (the previously released state, safe)."""
    regions = list(regions)
    by_released: dict[frozenset[int], set[int]] = {}
    for r in regions:
        released = r.groups - pending
        by_released.setdefault(released, set()).update(r.groups & pending)
    withhold: set[int] = set()
    for r in regions:
        if 0 < r.subjects < k:
            mine = r.groups & pending
            withhold |= mine if mine else by_released.get(r.groups - pending, set())
    return withhold


@dataclass(frozen=True)
class Nesting:
    """Group `inner` lies inside group `outer` (every atom of one is in the other); `rest`
    is a group made of exactly outer's other atoms, when there is one."""

    inner: int
    outer: int
    inner_subjects: int
    outer_subjects: int
    rest: int | None = None
    rest_subjects: int | None = None


@dataclass(frozen=True)
class Cover:
    """Groups that share no atom make up exactly group `whole`; `parts_subjects` is the sum
    of their distinct counts, `parts` the parts withholding can act on (at least those
    pending)."""

    whole: int
    whole_subjects: int
    parts: frozenset[int]
    parts_subjects: int


def exact_differences(nestings: Iterable[Nesting], pending: set[int], k: int,
                      covers: Iterable[Cover] = ()) -> set[int]:
    """Candidate groups to withhold so that no exact difference of distinct-subject counts
    comes to 1 to k-1 people.

    Distinct counts do not add up over regions: a person in two atoms counts once. So the
    region rule bounds sums of pings and trips but not `outer - inner` (the people only in
    outer's other atoms), nor `inner + rest - outer` (the people in both), nor the parts of a
    cover minus their whole (the crossings: people in two parts count once each time), which
    an analyst reads off released numbers. Each of those is a fixed fact of the frozen data,
    so withholding a group never makes another one unsafe: it is enough to withhold one
    pending group of each such pair, triple or cover, chosen greedily (the one in most of
    them first). A cover built by splitting released groups into released groups of one
    level, step by step, has the sum of its steps' crossings: each 0 or at least k, so is
    their sum."""
    unsafe: list[set[int]] = []
    for n in nestings:
        if 0 < n.outer_subjects - n.inner_subjects < k:
            unsafe.append({n.inner, n.outer} & pending)
        if n.rest is not None and 0 < n.inner_subjects + n.rest_subjects - n.outer_subjects < k:
            unsafe.append({n.inner, n.outer, n.rest} & pending)
    for c in covers:
        if 0 < c.parts_subjects - c.whole_subjects < k:
            unsafe.append(({c.whole} | c.parts) & pending)
    unsafe = [u for u in unsafe if u]  # none pending: released before, nothing to repair
    withhold: set[int] = set()
    while unsafe:
        counts: dict[int, int] = {}
        for u in unsafe:
            for g in u:
                counts[g] = counts.get(g, 0) + 1
        worst = min(counts, key=lambda g: (-counts[g], g))
        withhold.add(worst)
        unsafe = [u for u in unsafe if worst not in u]
    return withhold


@dataclass(frozen=True)
class Placed:
    """A released or pending heatmap group where it lies (its UTC day, ISO week or month and
    its cell), with its counts of basis atoms and of distinct subjects."""

    group_id: int
    t_from: dt.datetime
    t_to: dt.datetime
    res: int
    cell: int
    atoms: int
    subjects: int


def _parent(cell: int, res: int) -> int:
    """The H3 cell of resolution `res` holding `cell` (h3.cell_to_parent, as bit operations:
    the resolution field set, the digits below it 7)."""
    return (cell & ~(0xF << 52)) | (res << 52) | ((1 << (3 * (15 - res))) - 1)


LEVELS = [(t, r) for t in range(3) for r in range(5, 10)]  # (time class, resolution)
_BIT = {level: 1 << i for i, level in enumerate(LEVELS)}
_ABOVE = {(t, r): [(tt, rr) for tt in range(t, 3) for rr in range(r, 4, -1) if (tt, rr) != (t, r)]
          for t, r in LEVELS}


class _Where:
    """A group's level (time class 0 day, 1 week, 2 month; resolution) and the periods that
    hold it, as day numbers: its day, its ISO week's Monday, its month's first day."""

    __slots__ = ("g", "level", "periods", "held", "straddles", "place")

    def __init__(self, g: Placed):
        d = g.t_from.astimezone(dt.UTC).date()
        days = (g.t_to - g.t_from).days
        self.g = g
        self.level = (0 if days == 1 else 1 if days == 7 else 2, g.res)
        monday = d - dt.timedelta(days=d.weekday())
        self.periods = (d.toordinal(), monday.toordinal(), d.replace(day=1).toordinal())
        # its week, when it is a day, is not inside its month
        self.straddles = (monday.month != d.month
                          or (monday + dt.timedelta(days=6)).month != d.month)
        self.held = 0  # the levels at which a group holds this one (bits of _BIT)
        self.place = self.level, self.periods[self.level[0]], g.cell

    def at(self, level: tuple[int, int]) -> tuple:
        """Where the group of `level` holding this one would lie (its level, period, cell)."""
        return level, self.periods[level[0]], _parent(self.g.cell, level[1])

    def above(self) -> list[tuple[int, int]]:
        """The levels coarser than its own (in time, in resolution or both)."""
        return _ABOVE[self.level]

    def inside(self, w: _Where) -> bool:
        a, b = self.g, w.g
        return (a.group_id != b.group_id and b.t_from <= a.t_from and a.t_to <= b.t_to
                and a.res >= b.res and _parent(a.cell, b.res) == b.cell)


@cache  # fifteen levels
def _chains(level: tuple[int, int]) -> list[list[tuple[int, int]]]:
    """Every maximal chain of levels below `level` down to (day, 9), coarsest first: one
    step at a time, coarser in time (month, week, day) or finer in resolution."""
    t, r = level
    if (t, r) == (0, 9):
        return [[]]
    out = []
    if t > 0:
        out += [[(t - 1, r), *c] for c in _chains((t - 1, r))]
    if r < 9:
        out += [[(t, r + 1), *c] for c in _chains((t, r + 1))]
    return out


def chain_covers(groups: Iterable[Placed], pending: set[int]) -> list[Cover]:
    """The heatmap covers to check beyond one level: for each group that is pending or
    holds a pending group, and each maximal chain of levels below it, its topmost groups of
    that chain (those no coarser group of the chain inside it holds), when they make it up.

    Groups at two levels of one chain are nested or apart, so any cover of a group by groups
    whose levels form a chain refines its topmost cover for a maximal chain holding those
    levels, and its crossings are that cover's plus, for each topmost group, its own cover's
    crossings: each 0 or at least k once every such topmost cover is checked, so is the sum.
    A released group's topmost covers change only through a chain holding a pending level.
    Covers mixing two levels of which neither is coarser in both time and space (a day at
    resolution 7 beside a week at resolution 8) are not among them. A cover names its pending
    parts only."""
    where = [_Where(g) for g in groups]
    at: dict[tuple, list[_Where]] = {}  # place -> the groups there
    for x in where:
        at.setdefault(x.place, []).append(x)
    mine = [x for x in where if x.g.group_id in pending]
    pending_levels = {x.level for x in mine}
    wholes = {x.g.group_id: x for x in mine}
    for p in mine:
        for level in p.above():
            for w in at.get(p.at(level), ()):
                if p.inside(w):
                    wholes.setdefault(w.g.group_id, w)
    parts: dict[tuple, list[_Where]] = {w.place: [] for w in wholes.values()}
    for x in where:  # which levels hold it, and which wholes' places it lies in
        periods, cell, held = x.periods, x.g.cell, 0
        for level in _ABOVE[x.level]:
            r = level[1]
            place = (level, periods[level[0]],
                     (cell & ~(0xF << 52)) | (r << 52) | ((1 << (3 * (15 - r))) - 1))
            if place in at:
                held |= _BIT[level]
            if place in parts:
                parts[place].append(x)
        x.held = held
    out: dict[tuple, Cover] = {}
    for w in wholes.values():
        inside = parts[w.place]
        if w.level[0] == 2:  # a week that straddles the month is not inside it
            inside = [x for x in inside if not (x.level[0] == 1 and x.straddles)]
        chains = _chains(w.level)
        if w.g.group_id not in pending:
            chains = [c for c in chains if pending_levels & set(c)]
        # under a month, a week that straddles it holds nothing of it
        weeks = sum(_BIT[(1, r)] for r in range(5, 10)) if w.level[0] == 2 else 0
        # the parts by level and by the levels holding them: a chain's topmost parts are the
        # buckets of its levels held by none of the chain's coarser levels
        buckets: dict[tuple, list] = {}
        seen = set()
        for x in inside:
            place = x.place
            if place in seen:  # the same group asked twice (weakened setups only)
                continue
            seen.add(place)
            held = x.held & ~weeks if x.straddles else x.held
            b = buckets.setdefault((x.level, held), [0, 0, 0, []])
            b[0] += 1
            b[1] += x.g.atoms
            b[2] += x.g.subjects
            if x.g.group_id in pending:
                b[3].append(x.g.group_id)
        for chain in chains:
            before, mask = {}, 0
            for level in chain:
                before[level] = mask
                mask |= _BIT[level]
            n = atoms = subjects = 0
            ids: list[int] = []
            for (level, held), (bn, ba, bs, bids) in buckets.items():
                m = before.get(level)
                if m is None or held & m:
                    continue
                n, atoms, subjects = n + bn, atoms + ba, subjects + bs
                ids += bids
            mine = frozenset(ids) | ({w.g.group_id} & pending)
            if n >= 2 and atoms == w.g.atoms and mine:
                out.setdefault((w.g.group_id, mine, subjects),
                               Cover(w.g.group_id, w.g.subjects, frozenset(ids), subjects))
    return list(out.values())
