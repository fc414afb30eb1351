"""Attacks on aggregate releases (issue 16), each run twice: against a deliberately weakened
release path (one safeguard of exact mode off), where it must single somebody out, and
against the default, where it must not.

The world lives in March 2026, whatever today is: rollups, stops and trips are planted
directly in the real database at fixed instants, and every release is asked with an
explicit `now`. An independent oracle knows who is where. It takes every group a tenant was
given and checks that no Venn region of them (what sums and differences of released
numbers can isolate) holds 1 to k-1 people (`unsafe_regions`), and that no difference or
overlap of released distinct-subject counts that is exact (a group minus one nested in it;
two groups that make up a third) comes to 1 to k-1 people (`unsafe_differences`).
"""

from __future__ import annotations

import datetime as dt
import random
import uuid
from collections import defaultdict

import h3.api.basic_int as h3
import pytest
from sqlalchemy import text

from govern.auth import Principal
from govern.db import tenant_session
from govern.domain import consents, release, reports, travel_reports
from govern.errors import status_of
from govern.exceptions import GovernError
from govern.jobs import JOBS
from govern.sql.trips import site_at

UTC = dt.UTC
DAY = dt.timedelta(days=1)
HOUR = dt.timedelta(hours=1)
MONDAY = dt.datetime(2026, 3, 9, tzinfo=UTC)  # an ISO week inside March
MARCH = dt.datetime(2026, 3, 1, tzinfo=UTC)
APRIL = dt.datetime(2026, 4, 1, tzinfo=UTC)
LATER = dt.datetime(2026, 4, 20, tzinfo=UTC)  # every period of March has settled
K = 5
WEAK = {
    "settle": release.Safeguards(settle=False, freeze=False),
    "freeze": release.Safeguards(freeze=False),
    "edges": release.Safeguards(freeze=False, aligned_edges=False),
    # a lone person in a sibling cell is also a difference of distinct counts (12 - 11):
    # both checks stop it, so both are off to show the attack
    "complementary": release.Safeguards(complementary=False, differences=False),
    "differences": release.Safeguards(differences=False),
    "covers": release.Safeguards(covers=False),
    # a redraw moves records between groups: complementary suppression alone withholds
    # the new site (it cannot be repaired, so every candidate goes); both must be off
    "redraw": release.Safeguards(freeze=False, complementary=False),
}

PARENT = h3.latlng_to_cell(52.52, 13.405, 6)  # Berlin
C1, C2, C3 = sorted(h3.cell_to_children(PARENT, 7))[:3]


def nine(cell: int, i: int = 0) -> int:
    return sorted(h3.cell_to_children(cell, 9))[i]


PLANT_ROLLUP = text(
    """
    INSERT INTO rollups AS r (tenant_id, bucket, cell, r8, r7, r6, r5, pings, subjects)
    VALUES (:tenant_id, :bucket, :cell, :r8, :r7, :r6, :r5, :pings,
            hll_add(hll_empty(), hll_hash_text(:subject)))
    ON CONFLICT (tenant_id, bucket, cell) DO UPDATE
      SET pings = r.pings + EXCLUDED.pings, subjects = hll_union(r.subjects, EXCLUDED.subjects)
    """
)


def subject_differences(groups: list[tuple[tuple, frozenset, frozenset]], k: int) -> list[str]:
    """Exact distinct-subject counts that sums of regions miss. Each group is (its level, its
    atoms with data, the people in them). For B whose atoms include all of A's, |B| - |A| is
    how many people are in B's other atoms only; for B made of exactly A and A2, |A| + |A2|
    - |B| is how many people are in both; for B made of exactly three or more groups of one
    level, their counts minus |B| is how many times people crossed from one to another.
    Any of those at 1 to k-1 tells about that few people."""
    out = []
    by_atoms: dict[frozenset, list[frozenset]] = defaultdict(list)
    for _, atoms, people in groups:
        by_atoms[atoms].append(people)
    for _, a_atoms, a_people in groups:
        for _, b_atoms, b_people in groups:
            if not a_atoms < b_atoms:
                continue
            if 0 < len(b_people) - len(a_people) < k:
                out.append(f"{len(b_people)} - {len(a_people)} people")
            for rest in by_atoms.get(b_atoms - a_atoms, []):
                both = len(a_people) + len(rest) - len(b_people)
                if 0 < both < k:
                    out.append(f"{len(a_people)} + {len(rest)} - {len(b_people)} people")
    for _, b_atoms, b_people in groups:
        parts: dict[tuple, dict[frozenset, frozenset]] = defaultdict(dict)
        for level, a_atoms, a_people in groups:
            if a_atoms and a_atoms < b_atoms:
                parts[level][a_atoms] = a_people
        for level, found in parts.items():
            if len(found) >= 3 and frozenset().union(*found) == b_atoms:
                crossings = sum(map(len, found.values())) - len(b_people)
                if 0 < crossings < k:
                    out.append(f"{len(found)} parts of {level} cross {crossings} times")
    return out


def _maximal_chains(level: tuple[int, int]) -> list[list[tuple[int, int]]]:
    """Lattice paths from a (time class, resolution) level down to (day, 9), one step at a
    time: 2 month, 1 week, 0 day; resolutions 5 to 9."""
    t, r = level
    if (t, r) == (0, 9):
        return [[]]
    paths = [[(t - 1, r), *c] for c in _maximal_chains((t - 1, r))] if t else []
    return paths + ([[(t, r + 1), *c] for c in _maximal_chains((t, r + 1))] if r < 9 else [])


def chain_crossings(groups: list[dict], k: int) -> list[str]:
    """Heatmap groups (level, period [a, b), cell, atoms, people) that make up a released
    group along a chain of levels: for each chain, the groups at its levels inside B that no
    coarser one of them holds. If they are exactly B's atoms, their counts minus |B| is how
    many times people crossed between them."""
    def inside(x, y):
        return (x is not y and y["a"] <= x["a"] and x["b"] <= y["b"] and x["level"][1]
                >= y["level"][1] and h3.cell_to_parent(x["cell"], y["level"][1]) == y["cell"])

    out = []
    for b in groups:
        for chain in _maximal_chains(b["level"]):
            parts = {}
            for x in groups:
                if x["level"] in chain and inside(x, b):
                    parts.setdefault((x["level"], x["a"], x["cell"]), x)
            top = [x for x in parts.values()
                   if not any(inside(x, y) and chain.index(y["level"]) < chain.index(x["level"])
                              for y in parts.values())]
            if len(top) >= 2 and frozenset().union(*(x["atoms"] for x in top)) == b["atoms"]:
                crossings = sum(len(x["people"]) for x in top) - len(b["people"])
                if 0 < crossings < k:
                    out.append(f"{len(top)} topmost parts cross {crossings} times")
    return out


class World:
    """One tenant's planted data, the truth about it, and every answer it was given."""

    def __init__(self, tenant, sessions, k: int = K, **policy):
        assert tenant.patch("/v1/policy", {"k_min_subjects": k, **policy}).status_code == 200
        self.tenant, self.sessions, self.k = tenant, sessions, k
        self.principal = Principal(tenant.tenant_id, "member", None,
                                   member_id=tenant.owner_member_id, role="owner")
        self.cells = defaultdict(set)  # (day, resolution-9 cell) -> subjects
        self.released: list[tuple[str, dict, dt.datetime, dt.datetime]] = []

    def session(self):
        return tenant_session(self.sessions, self.tenant.tenant_id)

    def ping(self, subject: str, at: dt.datetime, cell: int, n: int = 1) -> None:
        parents = {f"r{r}": h3.cell_to_parent(cell, r) for r in (8, 7, 6, 5)}
        with self.session() as s:
            s.execute(PLANT_ROLLUP, {"tenant_id": self.tenant.tenant_id,
                                     "bucket": at.replace(minute=0, second=0), "cell": cell,
                                     "pings": n, "subject": subject, **parents})
        self.cells[(at.replace(hour=0, minute=0, second=0), cell)].add(subject)

    def heatmap(self, t_from, t_to, res, now, safeguards=release.FULL) -> dict:
        with self.session() as s:
            result = reports.heatmap(s, self.principal, t_from, t_to, res, now=now,
                                     safeguards=safeguards)
        for row in result.rows:
            self.released.append(("heatmap", {"res": res, **row}, t_from, t_to))
        return {r["cell"]: (r["pings"], r["subjects"]) for r in result.rows}

    def unsafe_regions(self) -> list[tuple[frozenset, int]]:
        """Regions of the released heatmap groups with 1 to k-1 people (from the truth)."""
        groups = [(i, g, a, b) for i, (kind, g, a, b) in enumerate(self.released)
                  if kind == "heatmap"]
        regions = defaultdict(set)
        for (day, cell), people in self.cells.items():
            sig = frozenset(i for i, g, a, b in groups
                            if a <= day < b and h3.cell_to_parent(cell, g["res"]) == g["cell"])
            if sig:
                regions[sig] |= people
        return [(sig, len(p)) for sig, p in regions.items() if 0 < len(p) < self.k]

    def unsafe_differences(self) -> list[str]:
        """Exact differences and overlaps of released heatmap subject counts under k."""
        groups = []
        for kind, g, a, b in self.released:
            if kind != "heatmap":
                continue
            atoms = frozenset(key for key in self.cells if a <= key[0] < b
                              and h3.cell_to_parent(key[1], g["res"]) == g["cell"])
            groups.append(((g["res"], b - a), atoms,
                           frozenset().union(*(self.cells[x] for x in atoms))))
        placed = [{"level": ({1: 0, 7: 1}.get((b - a).days, 2), g["res"]), "a": a, "b": b,
                   "cell": g["cell"], "atoms": atoms, "people": people}
                  for (kind, g, a, b), (_, atoms, people) in zip(
                      (r for r in self.released if r[0] == "heatmap"), groups, strict=True)]
        return subject_differences(groups, self.k) + chain_crossings(placed, self.k)


def crowd(world: World, n: int, cell: int, days, prefix: str, hour: int = 10) -> None:
    for i in range(n):
        for d in days:
            world.ping(f"{prefix}{i}", d + hour * HOUR, cell, n=3)


def differences(a: dict, b: dict, k: int) -> list[str]:
    """What comparing two answers to the same question gives away: a cell that moved by
    fewer than k people, or that appeared or vanished."""
    out = [f"{c} moved by {b[c][1] - a[c][1]}" for c in set(a) & set(b)
           if 0 < abs(b[c][1] - a[c][1]) < k]
    out += [f"{c} vanished" for c in set(a) - set(b)]
    out += [f"{c} appeared" for c in set(b) - set(a)]
    return out


# ---- 1. open periods, re-asked ----------------------------------------------------------------

def test_an_open_day_re_asked_exposes_a_late_person_unless_only_settled_days_are_released(
        tenant, sessions):
    day = MONDAY
    world = World(tenant, sessions)
    crowd(world, 6, nine(C1), [day], "crowd")
    weak = WEAK["settle"]
    before = world.heatmap(day, day + DAY, 9, day + 12 * HOUR, weak)
    world.ping("lone", day + 11 * HOUR, nine(C1), n=3)
    after = world.heatmap(day, day + DAY, 9, day + 14 * HOUR, weak)
    assert differences(before, after, K) == [f"{nine(C1)} moved by 1"]  # the attack works

    other = World(tenant, sessions)  # the same tenant, default safeguards
    with pytest.raises(GovernError) as refused:
        other.heatmap(day + 7 * DAY, day + 8 * DAY, 9, day + 7 * DAY + 12 * HOUR)
    assert refused.value.code == "period_not_settled"
    settled = day + 8 * DAY + 24 * HOUR
    crowd(other, 6, nine(C2), [day + 7 * DAY], "next")
    first = other.heatmap(day + 7 * DAY, day + 8 * DAY, 9, settled)
    other.ping("late", day + 7 * DAY + 11 * HOUR, nine(C2), n=3)  # after release
    again = other.heatmap(day + 7 * DAY, day + 8 * DAY, 9, settled + 3 * DAY)
    assert first == again and first[nine(C2)] == (18, 6)


def test_the_settling_delay_is_the_tenants(tenant, sessions):
    world = World(tenant, sessions, release_delay_hours=72)
    end = MONDAY + DAY
    with pytest.raises(GovernError) as refused:
        world.heatmap(MONDAY, end, 9, end + 71 * HOUR)
    assert refused.value.code == "period_not_settled" and status_of(refused.value) == 422
    assert world.heatmap(MONDAY, end, 9, end + 72 * HOUR) == {}


# ---- 3b. distinct counts do not add up: differences and overlaps of nested groups ---------------

@pytest.mark.parametrize("order", [(6, 7), (7, 6)])
def test_parent_minus_child_counts_the_people_only_in_a_sibling_unless_differences_are_checked(
        tenant, sessions, order):
    """Every region has at least k people (the sibling has 6: five of the child's crowd and
    one more), yet 12 in the parent minus 11 in the child says one person was in the
    sibling and nowhere in the child that day."""
    for name, safeguards in (("weak", WEAK["differences"]), ("default", release.FULL)):
        world = World(tenant, sessions)
        day = MONDAY + 2 * DAY if name == "weak" else MONDAY + 3 * DAY
        crowd(world, 11, nine(C1), [day], f"{name}-crowd")
        for i in range(5):
            world.ping(f"{name}-crowd{i}", day + 16 * HOUR, nine(C2), n=2)
        world.ping(f"{name}-lone", day + 15 * HOUR, nine(C2), n=4)
        got = {res: world.heatmap(day, day + DAY, res, LATER, safeguards) for res in order}
        parent, child = got[6].get(PARENT), got[7].get(C1)
        assert world.unsafe_regions() == []  # regions alone do not see it
        if name == "weak":
            assert parent[1] - child[1] == 1
            assert world.unsafe_differences()
        else:
            assert parent is None or child is None
            assert world.unsafe_differences() == []


@pytest.mark.parametrize("order", [(6, 7), (7, 6)])
def test_two_children_and_their_parent_count_the_people_in_both_unless_differences_are_checked(
        tenant, sessions, order):
    """Ten people in each child cell and two in both: 12 + 12 - 22 says two people were
    in both cells that day, though every region has at least k."""
    for name, safeguards in (("weak", WEAK["differences"]), ("default", release.FULL)):
        world = World(tenant, sessions)
        day = MONDAY + 4 * DAY if name == "weak" else MONDAY + 5 * DAY
        crowd(world, 10, nine(C1), [day], f"{name}-one")
        crowd(world, 10, nine(C2), [day], f"{name}-two")
        for i in range(2):
            world.ping(f"{name}-both{i}", day + 9 * HOUR, nine(C1))
            world.ping(f"{name}-both{i}", day + 11 * HOUR, nine(C2))
        got = {res: world.heatmap(day, day + DAY, res, LATER, safeguards) for res in order}
        parent, one, two = got[6].get(PARENT), got[7].get(C1), got[7].get(C2)
        assert world.unsafe_regions() == []
        if name == "weak":
            assert one[1] + two[1] - parent[1] == 2
            assert world.unsafe_differences()
        else:
            assert None in (parent, one, two)
            assert world.unsafe_differences() == []


@pytest.mark.parametrize("order", [(6, 7), (7, 6)])
def test_three_children_and_their_parent_count_a_crossing_unless_covers_are_checked(
        tenant, sessions, order):
    """Five people in each of three child cells and one more in two of them: 6 + 6 + 5 - 16
    says one person was in two of the cells that day, though every region has at least k,
    no child is within k of the parent and no two children make up the parent."""
    for name, safeguards in (("weak", WEAK["covers"]), ("default", release.FULL)):
        world = World(tenant, sessions)
        day = MONDAY + 2 * DAY if name == "weak" else MONDAY + 3 * DAY
        for cell, team in ((C1, "one"), (C2, "two"), (C3, "three")):
            crowd(world, 5, nine(cell), [day], f"{name}-{team}")
        world.ping(f"{name}-cross", day + 9 * HOUR, nine(C1))
        world.ping(f"{name}-cross", day + 15 * HOUR, nine(C2))
        got = {res: world.heatmap(day, day + DAY, res, LATER, safeguards) for res in order}
        parent, parts = got[6].get(PARENT), [got[7].get(c) for c in (C1, C2, C3)]
        assert world.unsafe_regions() == []
        if name == "weak":
            assert sum(p[1] for p in parts) - parent[1] == 1
            assert world.unsafe_differences() == [
                "3 parts of (7, datetime.timedelta(days=1)) cross 1 times",  # one level
                "3 topmost parts cross 1 times"]  # and as a chain's topmost cover
        else:
            assert None in (parent, *parts)
            assert world.unsafe_differences() == []


def test_a_week_and_its_days_count_a_return_unless_covers_are_checked(tenant, sessions):
    """Three teams of five, each on its own day in one cell, and one of them back on a
    second day: the three days minus the week say one person came on two of them."""
    for name, safeguards in (("weak", WEAK["covers"]), ("default", release.FULL)):
        world = World(tenant, sessions)
        week = MONDAY if name == "weak" else MONDAY + 7 * DAY
        days = [week + i * DAY for i in range(3)]
        for i, d in enumerate(days):
            crowd(world, 5, nine(C1), [d], f"{name}-day{i}")
        world.ping(f"{name}-day0" + "0", days[1] + 17 * HOUR, nine(C1))
        parts = [world.heatmap(d, d + DAY, 9, LATER, safeguards).get(nine(C1)) for d in days]
        whole = world.heatmap(week, week + 7 * DAY, 9, LATER, safeguards).get(nine(C1))
        if name == "weak":
            assert sum(p[1] for p in parts) - whole[1] == 1
            assert world.unsafe_differences()
        else:
            assert None in (whole, *parts)
            assert world.unsafe_differences() == []


@pytest.mark.parametrize("month_first", [False, True])
def test_a_month_as_its_weeks_and_other_days_counts_a_crossing_unless_covers_are_checked(
        make_tenant, sessions, month_first):
    """Teams of five on Monday 2 March, Tuesday 10 March and Monday 30 March, and one of the
    first team back on the 10th: the two weeks and the 30th (no week of March holds it) make
    up the month, and 5 + 6 + 5 - 15 says one person came in two of them. They are of two
    levels, weeks and days, so no one-level cover sees it."""
    for name, safeguards in (("weak", WEAK["covers"]), ("default", release.FULL)):
        world = World(make_tenant(f"{name}-{month_first}"), sessions)
        w1, w2, day = MARCH + DAY, MARCH + 8 * DAY, MARCH + 29 * DAY
        for d, team in ((w1, "one"), (w2 + DAY, "two"), (day, "three")):
            crowd(world, 5, nine(C1), [d], f"{name}-{team}")
        world.ping(f"{name}-one0", w2 + DAY + 15 * HOUR, nine(C1))
        asks = [(w1, w1 + 7 * DAY), (w2, w2 + 7 * DAY), (day, day + DAY)]
        asks = [(MARCH, APRIL), *asks] if month_first else [*asks, (MARCH, APRIL)]
        got = {a: world.heatmap(a, b, 9, LATER, safeguards).get(nine(C1)) for a, b in asks}
        parts, whole = [got[w1], got[w2], got[day]], got[MARCH]
        assert world.unsafe_regions() == []
        if name == "weak":
            assert [p[1] for p in parts] == [5, 6, 5] and whole[1] == 15
            assert world.unsafe_differences() == ["3 topmost parts cross 1 times"]
        else:
            assert None in (whole, *parts)
            assert world.unsafe_differences() == []


# ---- 2 and 4. late pings after release, sticky suppression as a signal -------------------------

def test_a_released_week_cell_vanishing_pins_a_late_person_unless_releases_are_frozen(
        tenant, sessions):
    for name, safeguards in (("weak", WEAK["freeze"]), ("default", release.FULL)):
        world = World(tenant, sessions)
        start = MONDAY if name == "weak" else MONDAY + 7 * DAY
        weekdays = [start + i * DAY for i in range(5)]
        crowd(world, 6, nine(C1), weekdays, f"{name}-crowd")
        first = world.heatmap(start, start + 7 * DAY, 9, LATER, safeguards)
        assert first[nine(C1)][1] == 6
        world.ping(f"{name}-lone", start + 6 * DAY + 9 * HOUR, nine(C1))  # a late Sunday
        again = world.heatmap(start, start + 7 * DAY, 9, LATER + DAY, safeguards)
        leaks = differences(first, again, K)
        if name == "weak":
            assert leaks == [f"{nine(C1)} vanished"]
        else:
            assert leaks == [] and again == first


# ---- 3. resolutions: parent and child ---------------------------------------------------------

@pytest.mark.parametrize("order", [(6, 7), (7, 6)])
def test_parent_minus_released_child_leaves_one_person_unless_suppression_is_complementary(
        tenant, sessions, order):
    for name, safeguards in (("weak", WEAK["complementary"]), ("default", release.FULL)):
        world = World(tenant, sessions)
        day = MONDAY if name == "weak" else MONDAY + DAY
        crowd(world, 11, nine(C1), [day], f"{name}-crowd")
        world.ping(f"{name}-lone", day + 15 * HOUR, nine(C2), n=4)
        got = {res: world.heatmap(day, day + DAY, res, LATER, safeguards) for res in order}
        parent, child = got[6].get(PARENT), got[7].get(C1)
        if name == "weak":
            assert parent[1] - child[1] == 1 and parent[0] - child[0] == 4  # their 4 pings
            assert world.unsafe_regions()
        else:
            assert parent is None or child is None
            assert world.unsafe_regions() == []


# ---- 2. moving retention edges ----------------------------------------------------------------

def test_a_moving_retention_edge_exposes_hours_unless_edges_are_whole_days(tenant, sessions):
    keep = 60
    for name, safeguards in (("weak", WEAK["edges"]), ("default", release.FULL)):
        world = World(tenant, sessions, aggregate_retention_days=keep)
        day = MONDAY if name == "weak" else MONDAY + DAY
        crowd(world, 6, nine(C1), [day], f"{name}-crowd", hour=20)
        world.ping(f"{name}-lone", day + 12 * HOUR, nine(C1), n=2)
        edge = day + dt.timedelta(days=keep)
        early = world.heatmap(day, day + DAY, 9, edge + 10 * HOUR, safeguards)
        late = world.heatmap(day, day + DAY, 9, edge + 14 * HOUR, safeguards)
        if name == "weak":
            assert differences(early, late, K) == [f"{nine(C1)} moved by -1"]
        else:
            assert early == late == {}  # the day is past retention as a whole, or released whole


def test_a_period_past_retention_disappears_whole_and_a_released_one_stays_as_it_was(
        tenant, sessions):
    world = World(tenant, sessions, aggregate_retention_days=60)
    crowd(world, 6, nine(C1), [MONDAY + i * DAY for i in range(3)], "crowd")
    week = (MONDAY, MONDAY + 7 * DAY)
    first = world.heatmap(*week, 9, MONDAY + 9 * DAY)
    assert first[nine(C1)] == (54, 6)
    # the first day leaves the window: the whole week goes, never the week minus a day
    assert world.heatmap(*week, 9, MONDAY + 60 * DAY + HOUR) == {}
    assert world.heatmap(*week, 9, MONDAY + 59 * DAY) == first  # asked earlier: as released


def test_a_period_too_near_the_edge_is_not_released_for_the_first_time(tenant, sessions):
    world = World(tenant, sessions, aggregate_retention_days=60)
    crowd(world, 6, nine(C1), [MONDAY], "crowd")
    with world.session() as s:
        result = reports.heatmap(s, world.principal, MONDAY, MONDAY + DAY, 9,
                                 now=MONDAY + 40 * DAY)
    assert result.rows == [] and [w["reason"] for w in result.explain()] == [
        "near_retention_edge"]


# ---- every pair of allowed releases, randomized -----------------------------------------------

def _world_cells() -> list[int]:
    """The resolution-9 cells of the random worlds: two in each of three resolution-7 cells
    of two resolution-6 cells."""
    parents = [PARENT, sorted(h3.grid_disk(PARENT, 1))[1]]
    return [nine(c, i) for p in parents for c in sorted(h3.cell_to_children(p, 7))[:3]
            for i in (0, 40)]


def _random_world(tenant, sessions, seed: int) -> World:
    """Teams of 5 to 9 people working in a few resolution-9 cells of two resolution-6 cells,
    plus lone people and pairs in cells nobody else visits, over a fortnight of March."""
    rng = random.Random(seed)
    world = World(tenant, sessions)
    cells = _world_cells()
    days = [MONDAY + i * DAY for i in range(14)]
    n = 0
    for _ in range(6):
        cell, size = rng.choice(cells), rng.randint(5, 9)
        team_days = rng.sample(days, rng.randint(2, 6))
        for i in range(size):
            for d in team_days:
                world.ping(f"t{n}-{i}", d + rng.randint(6, 18) * HOUR, cell, rng.randint(1, 5))
        n += 1
    for j in range(8):  # small groups: 1 or 2 people, where teams also are or not
        for i in range(rng.randint(1, 2)):
            world.ping(f"s{j}-{i}", rng.choice(days) + rng.randint(6, 18) * HOUR,
                       rng.choice(cells), rng.randint(1, 5))
    return world


def _moving_world(tenant, sessions, seed: int) -> World:
    """The random world, and three team members who also went, late on one of their days,
    to a cell of the world picked at random: people crossing between cells."""
    world = _random_world(tenant, sessions, seed)
    rng = random.Random(seed * 7)
    cells = _world_cells()
    people = sorted({(who, day) for (day, _), ps in world.cells.items() for who in ps
                     if who.startswith("t")})
    for who, day in rng.sample(people, 3):
        world.ping(who, day + 20 * HOUR, rng.choice(cells))
    return world


def _every_release(world: World, seed: int, safeguards) -> None:
    rng = random.Random(seed)
    asks = [(MONDAY + i * DAY, MONDAY + (i + 1) * DAY) for i in range(14)]
    asks += [(MONDAY, MONDAY + 7 * DAY), (MONDAY + 7 * DAY, MONDAY + 14 * DAY), (MARCH, APRIL)]
    combos = [(a, b, res) for a, b in asks for res in (5, 6, 7, 8, 9)]
    rng.shuffle(combos)
    for a, b, res in combos:
        world.heatmap(a, b, res, LATER, safeguards)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_no_combination_of_released_heatmaps_narrows_anything_below_k(tenant, sessions, seed):
    """Days, weeks and the month at every resolution, in a random order: the oracle finds
    small regions when complementary suppression is off, and none with it on."""
    weak = _random_world(tenant, sessions, seed)
    _every_release(weak, seed, WEAK["complementary"])
    assert weak.unsafe_regions(), "the planted world has no small region to find"


@pytest.mark.parametrize("seed", [1, 2])
def test_released_heatmaps_give_exact_differences_under_k_unless_they_are_checked(
        make_tenant, sessions, seed):
    """The same random worlds with only the difference check off: distinct counts of
    nested cells differ by 1 to k-1 people, though every region is safe."""
    weak = _random_world(make_tenant(f"diff-{seed}"), sessions, seed)
    _every_release(weak, seed, WEAK["differences"])
    assert weak.unsafe_regions() == []
    assert weak.unsafe_differences(), "the planted world has no small difference to find"


def test_released_heatmaps_give_crossings_under_k_unless_covers_are_checked(
        make_tenant, sessions):
    """A random world with people crossing between cells and only the cover check off:
    three cells of one level make up a fourth and their counts exceed its by 1 to k-1."""
    weak = _moving_world(make_tenant("cross-weak"), sessions, 6)
    _every_release(weak, 6, WEAK["covers"])
    assert weak.unsafe_regions() == []
    assert any("parts of" in d for d in weak.unsafe_differences()), \
        "the planted world has no small crossing to find"


@pytest.mark.parametrize("seed", [1, 6])
def test_default_releases_of_a_moving_world_leave_nothing_below_k(make_tenant, sessions,
                                                                   seed):
    world = _moving_world(make_tenant(f"moving-{seed}"), sessions, seed)
    _every_release(world, seed, release.FULL)
    assert world.unsafe_regions() == []
    assert world.unsafe_differences() == []
    assert any(kind == "heatmap" for kind, *_ in world.released)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_default_releases_leave_no_region_below_k(make_tenant, sessions, seed):
    world = _random_world(make_tenant(f"seed-{seed}"), sessions, seed)
    _every_release(world, seed, release.FULL)
    assert world.unsafe_regions() == []
    assert world.unsafe_differences() == []
    assert any(kind == "heatmap" for kind, *_ in world.released)  # not by releasing nothing


# ---- the travel family: travel, visits and origin-destination over the same stops and trips ---

def square(lat0: float, lon0: float, lat1: float, lon1: float) -> dict:
    return {"type": "Polygon", "coordinates": [[[lon0, lat0], [lon1, lat0], [lon1, lat1],
                                                [lon0, lat1], [lon0, lat0]]]}


A = square(52.500, 13.400, 52.510, 13.420)
A1 = square(52.500, 13.400, 52.505, 13.410)  # inside A
IN_A1 = (52.502, 13.405)
IN_A_ONLY = (52.508, 13.415)
OUTSIDE = [(52.53, 13.45), (52.56, 13.30), (52.45, 13.52)]

# the sites as the trips build attributes them (sql.trips.site_at, a subquery naming the
# tenant), looked up first and planted as values: Citus cannot plan the SQL function
# govern_site_at beside parameters, nor subqueries in an INSERT ... VALUES
PLANT_STOP = text(
    """
    INSERT INTO stops (tenant_id, subject_id, started_at, ended_at, duration_s, lon, lat, cell,
                       site_id, pings, purpose_mask, precision_m)
    VALUES (:tenant_id, :s, :t0, :t0 + make_interval(secs => :dur), :dur, :lon, :lat, :cell,
            CAST(:site AS uuid), 10, :mask, 500)
    """
)
PLANT_TRIP = text(
    """
    INSERT INTO trips (tenant_id, subject_id, started_at, ended_at, duration_s, moving_s,
                       distance_m, origin_lon, origin_lat, origin_cell, origin_site_id,
                       dest_lon, dest_lat, dest_cell, dest_site_id, from_stop, to_stop, pings,
                       purpose_mask, precision_m)
    VALUES (:tenant_id, :s, :t0, :t0 + interval '20 minutes', 1200, 900, :dist, :olon, :olat,
            :ocell, CAST(:osite AS uuid), :dlon, :dlat, :dcell, CAST(:dsite AS uuid),
            true, true, 40, :mask, 500)
    """
)


class TravelWorld(World):
    """Stops and trips of consenting subjects under an aggregate purpose; the truth is each
    record with its day, subject and zones (sites as planted)."""

    def __init__(self, tenant, sessions, retention_days: int = 365, **policy):
        super().__init__(tenant, sessions, **policy)
        bit_of = text("SELECT bit FROM purposes WHERE key = 'analytics'")
        with self.session() as s:
            bit = s.execute(bit_of).scalar()
        if bit is None:
            tenant.purpose("analytics", precision_m=500, retention_days=retention_days,
                           aggregate_use=True, individual_access=False)
            with self.session() as s:
                bit = s.execute(bit_of).scalar()
        self.mask = 1 << bit
        self.subjects: dict[str, str] = {}
        self.records: list[dict] = []
        self.sites: dict[str, str] = {}

    def site(self, name: str, geometry: dict) -> str:
        resp = self.tenant.post("/v1/sites", {"name": name, "geometry": geometry})
        assert resp.status_code == 201, resp.get_json()
        self.sites[name] = resp.get_json()["site_id"]
        return self.sites[name]

    def subject(self, name: str) -> str:
        if name not in self.subjects:
            sid = self.tenant.subject(name)["subject_id"]
            with self.session() as s:  # recorded in the world's time, whatever today is
                consents.record_consent(
                    s, self.tenant.tenant_id, uuid.UUID(sid), purpose_key="analytics",
                    status="granted", at=dt.datetime(2026, 1, 1, tzinfo=UTC),
                    policy_version="v1", evidence={"form": "test"}, source="admin",
                    actor="test", now=MARCH)
            self.subjects[name] = sid
        return self.subjects[name]

    def _site_at(self, s, lat, lon):
        site = s.execute(text(f"SELECT CAST(({site_at(':lon', ':lat')}) AS text)"),
                         {"tenant_id": self.tenant.tenant_id, "lon": lon, "lat": lat}).scalar()
        return site

    def stop(self, who: str, at: dt.datetime, where, dur: int = 1800) -> None:
        sid = self.subject(who)
        with self.session() as s:
            site = self._site_at(s, *where)
            s.execute(PLANT_STOP, {"tenant_id": self.tenant.tenant_id, "s": sid, "t0": at,
                                   "dur": dur, "lat": where[0], "lon": where[1],
                                   "cell": h3.latlng_to_cell(*where, 8), "mask": self.mask,
                                   "site": site})
        self.records.append({"kind": "stop", "day": _day(at), "who": who, "site": site})

    def trip(self, who: str, at: dt.datetime, origin, dest, dist: float = 3000.0) -> None:
        sid = self.subject(who)
        with self.session() as s:
            osite, dsite = self._site_at(s, *origin), self._site_at(s, *dest)
            s.execute(PLANT_TRIP, {"tenant_id": self.tenant.tenant_id, "s": sid, "t0": at,
                                   "dist": dist, "olat": origin[0], "olon": origin[1],
                                   "ocell": h3.latlng_to_cell(*origin, 8), "dlat": dest[0],
                                   "dlon": dest[1], "dcell": h3.latlng_to_cell(*dest, 8),
                                   "mask": self.mask, "osite": osite, "dsite": dsite})
        self.records.append({"kind": "trip", "day": _day(at), "who": who, "osite": osite,
                             "dsite": dsite, "ocell": h3.latlng_to_cell(*origin, 8),
                             "dcell": h3.latlng_to_cell(*dest, 8)})

    def report(self, kind: str, t_from, t_to, now, safeguards=release.FULL, **params):
        fn = {"travel": travel_reports.travel_report, "visits": travel_reports.visits_report,
              "od": travel_reports.od_report}[kind]
        with self.session() as s:
            result = fn(s, self.principal, t_from, t_to, now=now, safeguards=safeguards,
                        **params)
        for row in result.rows:
            self.released.append((kind, {**params, **row}, t_from, t_to))
        return result

    def unsafe_regions(self) -> list[tuple[frozenset, int]]:
        groups = [(i, kind, g, a, b) for i, (kind, g, a, b) in enumerate(self.released)
                  if kind != "heatmap"]
        regions = defaultdict(set)
        for rec in self.records:
            sig = frozenset(i for i, kind, g, a, b in groups if _covers(kind, g, a, b, rec))
            if sig:
                regions[sig].add(rec["who"])
        return [(sig, len(p)) for sig, p in regions.items() if 0 < len(p) < self.k]

    def unsafe_differences(self) -> list[str]:
        """Exact differences and overlaps of released travel, visits and OD subject counts
        under k (one family: the same stops and trips)."""
        groups = []
        for kind, g, a, b in self.released:
            if kind == "heatmap":
                continue
            atoms = frozenset(i for i, rec in enumerate(self.records)
                              if _covers(kind, g, a, b, rec))
            groups.append((_level(kind, g, a, b), atoms,
                           frozenset(self.records[i]["who"] for i in atoms)))
        return subject_differences(groups, self.k)


def _level(kind: str, g: dict, a: dt.datetime, b: dt.datetime) -> tuple:
    """A released row's level: groups of one level share no record."""
    if kind in ("travel", "visits"):
        start = dt.datetime.fromisoformat(g["bucket"])
        span = 7 * DAY if g["bucket_kind"] == "week" else DAY
        return kind, min(b, start + span) - max(a, start)
    return kind, g["zones"], b - a


def _day(at: dt.datetime) -> dt.datetime:
    return at.replace(hour=0, minute=0, second=0, microsecond=0)


def _covers(kind: str, g: dict, a: dt.datetime, b: dt.datetime, rec: dict) -> bool:
    """Whether a released row counts a record (the oracle's own reading of each report)."""
    if kind in ("travel", "visits"):
        start = dt.datetime.fromisoformat(g["bucket"])
        span = 7 * DAY if g["bucket_kind"] == "week" else DAY
        if not (max(a, start) <= rec["day"] < min(b, start + span)):
            return False
        return kind == "travel" or (rec["kind"] == "stop" and rec["site"] == g["site_id"])
    if not (a <= rec["day"] < b) or rec["kind"] != "trip":
        return False
    if g["zones"] == "sites":
        return (rec["osite"], rec["dsite"]) == (g["origin"]["site_id"],
                                                g["destination"]["site_id"])
    res = int(g["zones"].split(":")[1])
    return (h3.cell_to_parent(rec["ocell"], res) == h3.str_to_int(g["origin"]["cell"])
            and h3.cell_to_parent(rec["dcell"], res) == h3.str_to_int(g["destination"]["cell"]))


def _visits(world, day, now, safeguards):
    result = world.report("visits", day, day + DAY, now, safeguards, bucket="day")
    return {r["site"]: r["subjects"] for r in result.rows}


def test_a_redrawn_site_exposes_who_stopped_outside_it_unless_the_basis_is_frozen(
        make_tenant, sessions):
    """Site A (12 people: 11 where A1 will be drawn, one elsewhere in A); the same closed day
    asked again after an admin draws A1 inside A."""
    for name, safeguards in (("weak", WEAK["redraw"]), ("default", release.FULL)):
        world = TravelWorld(make_tenant(name), sessions)
        day = MONDAY + DAY
        world.site("A", A)
        for i in range(11):
            world.stop(f"{name}-{i}", day + 9 * HOUR, IN_A1)
            world.trip(f"{name}-{i}", day + 10 * HOUR, IN_A1, OUTSIDE[0])
        world.stop(f"{name}-lone", day + 9 * HOUR, IN_A_ONLY)
        world.trip(f"{name}-lone", day + 10 * HOUR, IN_A_ONLY, OUTSIDE[0])
        before = _visits(world, day, LATER, safeguards)
        od_before = world.report("od", day, day + DAY, LATER, safeguards, zones="sites")
        world.site("A1", A1)
        after = _visits(world, day, LATER + DAY, safeguards)
        od_after = world.report("od", day, day + DAY, LATER + DAY, safeguards, zones="sites")
        # a report type not asked before the redraw, over the same day
        week = world.report("visits", MONDAY, MONDAY + 7 * DAY, LATER + DAY, safeguards,
                            bucket="week")
        if name == "weak":
            assert before == {"A": 12} and after == {"A1": 11}  # 12 - 11: the lone person
            assert [p["subjects"] for p in od_before.rows] == [12]
            assert [p["subjects"] for p in od_after.rows] == [11]
        else:
            assert before == after == {"A": 12}
            assert od_before.rows == od_after.rows
            assert [(v["site"], v["subjects"]) for v in week.rows] == [("A", 12)]


def test_a_moving_purpose_window_exposes_one_trip_unless_edges_are_whole_days(
        tenant, sessions):
    for name, safeguards in (("weak", WEAK["edges"]), ("default", release.FULL)):
        world = TravelWorld(tenant, sessions, retention_days=30)
        day = MONDAY if name == "weak" else MONDAY + DAY
        for i in range(6):
            world.trip(f"{name}-{i}", day + 20 * HOUR, OUTSIDE[0], OUTSIDE[1])
        world.trip(f"{name}-lone", day + 12 * HOUR, OUTSIDE[1], OUTSIDE[2], dist=7777)
        edge = day + 30 * DAY
        got = [world.report("travel", day, day + DAY, edge + h * HOUR, safeguards,
                            bucket="day").rows for h in (11, 13)]
        if name == "weak":
            (early,), (late,) = got
            assert (early["trips"] - late["trips"],
                    early["distance_m"] - late["distance_m"]) == (1, 7777)
        else:
            assert got[0] == got[1] == []  # the purpose's window no longer holds the day


def test_a_day_released_before_its_edge_stays_as_it_was(tenant, sessions):
    world = TravelWorld(tenant, sessions, retention_days=30)
    for i in range(6):
        world.trip(f"w{i}", MONDAY + 20 * HOUR, OUTSIDE[0], OUTSIDE[1])
    world.trip("lone", MONDAY + 12 * HOUR, OUTSIDE[1], OUTSIDE[2], dist=7777)
    first = world.report("travel", MONDAY, MONDAY + DAY, MONDAY + 3 * DAY, bucket="day")
    for hours in (11, 13, 400):
        again = world.report("travel", MONDAY, MONDAY + DAY,
                             MONDAY + 30 * DAY + hours * HOUR, bucket="day")
        assert again.rows == first.rows and again.replayed
    assert first.rows[0]["trips"] == 7


def _random_travel(tenant, sessions, seed: int) -> TravelWorld:
    rng = random.Random(seed)
    world = TravelWorld(tenant, sessions)
    world.site("A", A)
    world.site("A1", A1)
    places = [IN_A1, IN_A_ONLY, *OUTSIDE]
    days = [MONDAY + i * DAY for i in range(7)]
    n = 0
    for _ in range(4):  # teams doing a round together on some days
        size, route = rng.randint(5, 8), rng.sample(places, 3)
        team_days = rng.sample(days, rng.randint(1, 3))
        for i in range(size):
            for d in team_days:
                world.stop(f"t{n}-{i}", d + 8 * HOUR, route[0])
                world.trip(f"t{n}-{i}", d + 9 * HOUR, route[0], route[1])
                world.stop(f"t{n}-{i}", d + 10 * HOUR, route[1])
                world.trip(f"t{n}-{i}", d + 11 * HOUR, route[1], route[2])
        n += 1
    for j in range(6):  # lone people and pairs, on their own routes
        for i in range(rng.randint(1, 2)):
            d, (o, t) = rng.choice(days), rng.sample(places, 2)
            world.stop(f"s{j}-{i}", d + 13 * HOUR, o)
            world.trip(f"s{j}-{i}", d + 14 * HOUR + i * dt.timedelta(minutes=30), o, t)
    return world


def _every_travel_release(world: TravelWorld, seed: int, safeguards) -> None:
    rng = random.Random(seed)
    ranges = [(MONDAY + i * DAY, MONDAY + (i + 1) * DAY) for i in range(7)]
    ranges.append((MONDAY, MONDAY + 7 * DAY))
    asks = []
    for a, b in ranges:
        for bucket in ("day", "week"):
            asks += [("travel", a, b, {"bucket": bucket}), ("visits", a, b, {"bucket": bucket})]
        asks += [("od", a, b, {"zones": z}) for z in ("sites", "h3:6", "h3:7", "h3:8")]
    rng.shuffle(asks)
    for kind, a, b, params in asks:
        extra = {"bucket_kind": params["bucket"]} if "bucket" in params else {}
        before = len(world.released)
        world.report(kind, a, b, LATER, safeguards, **params)
        for i in range(before, len(world.released)):
            world.released[i][1].update(extra)


@pytest.mark.parametrize("seed", [4, 5, 6])
def test_no_combination_of_travel_visits_and_od_releases_narrows_anything_below_k(
        make_tenant, sessions, seed):
    weak = _random_travel(make_tenant(f"weak-{seed}"), sessions, seed)
    _every_travel_release(weak, seed, WEAK["complementary"])
    assert weak.unsafe_regions(), "the planted world has no small region to find"
    differ = _random_travel(make_tenant(f"differ-{seed}"), sessions, seed)
    _every_travel_release(differ, seed, WEAK["differences"])
    assert differ.unsafe_regions() == []
    assert differ.unsafe_differences(), "the planted world has no small difference to find"
    world = _random_travel(make_tenant(f"default-{seed}"), sessions, seed)
    _every_travel_release(world, seed, release.FULL)
    assert world.unsafe_regions() == []
    assert world.unsafe_differences() == []
    assert len(world.released) > 0


def test_each_range_is_its_own_answer(tenant, sessions):
    """A day asked in weekly buckets and its whole week are two answers, not one replayed
    (the ledger key holds the whole range; the random suite found this)."""
    world = TravelWorld(tenant, sessions)
    for day in (MONDAY, MONDAY + DAY):
        for i in range(5):
            world.trip(f"w{i}", day + 9 * HOUR, OUTSIDE[0], OUTSIDE[1])
    day = world.report("travel", MONDAY, MONDAY + DAY, LATER, bucket="week").rows
    week = world.report("travel", MONDAY, MONDAY + 7 * DAY, LATER, bucket="week").rows
    assert [r["trips"] for r in day] == [5] and [r["trips"] for r in week] == [10]


def test_the_retention_run_deletes_releases_past_the_window(tenant, sessions, owner,
                                                            superuser):
    from govern.domain.retention import run_all

    world = TravelWorld(tenant, sessions, aggregate_retention_days=60)
    crowd(world, 6, nine(C1), [MONDAY, MONDAY + DAY], "crowd")
    for i in range(5):
        world.trip(f"w{i}", MONDAY + 9 * HOUR, OUTSIDE[0], OUTSIDE[1])
    now = MONDAY + 10 * DAY
    assert world.heatmap(MONDAY, MONDAY + 7 * DAY, 9, now)
    assert world.report("travel", MONDAY, MONDAY + DAY, now, bucket="day").rows
    tables = ("release_answers", "release_groups", "release_days", "release_cell_atoms",
              "release_travel_atoms")

    def left():
        return {t: superuser.execute(f"SELECT count(*) FROM {t} WHERE tenant_id = %s",
                                     (tenant.tenant_id,)).fetchone()[0] for t in tables}

    assert all(left().values())
    run_all(owner, sessions, MONDAY + 60 * DAY + HOUR, tenant_id=tenant.tenant_id)
    # Monday is past the window; Tuesday to Sunday are not
    kept = left()
    assert kept["release_answers"] == kept["release_groups"] == 0  # both began on Monday
    assert kept["release_days"] == 6  # the heatmap week's days less Monday (travel: Monday)
    run_all(owner, sessions, MONDAY + 70 * DAY, tenant_id=tenant.tenant_id)
    assert not any(left().values())


def test_the_scheduler_freezes_settled_days_only(tenant, sessions, superuser):
    world = World(tenant, sessions)
    crowd(world, 6, nine(C1), [MONDAY, MONDAY + DAY], "crowd")
    now = MONDAY + 2 * DAY + 23 * HOUR  # Monday has settled (24 h after its end), Tuesday not
    back = release.FREEZE_DAYS_BACK
    assert release.freeze_settled(sessions, tenant.tenant_id, now) == 2 * back  # 2 families
    days = {d for (d,) in superuser.execute(
        "SELECT day FROM release_days WHERE tenant_id = %s", (tenant.tenant_id,))}
    assert max(days) == MONDAY and min(days) == MONDAY - (back - 1) * DAY  # not Tuesday
    assert release.freeze_settled(sessions, tenant.tenant_id, now) == 0  # once
    world.ping("late", MONDAY + 11 * HOUR, nine(C1))  # after the scheduler froze Monday
    assert world.heatmap(MONDAY, MONDAY + DAY, 9, now + DAY)[nine(C1)] == (18, 6)


def test_the_release_basis_job_freezes_every_exact_tenant_and_no_private_one(
        make_tenant, sessions, owner, superuser):
    exact = World(make_tenant("exact"), sessions)
    private = World(make_tenant("private"), sessions, dp_epsilon_per_query=0.5,
                    dp_epsilon_per_day=2.0)
    for world in (exact, private):
        crowd(world, 6, nine(C1), [MONDAY], world.tenant.tenant_id.hex[:6])
    now = MONDAY + 2 * DAY + 23 * HOUR
    assert "release_basis" in {job.name for job in JOBS}
    report = release.freeze_all(owner, sessions, now)
    assert report["frozen_days"] == 2 * release.FREEZE_DAYS_BACK  # the exact tenant's only
    frozen = dict(superuser.execute(
        "SELECT tenant_id, count(*) FROM release_days WHERE tenant_id = ANY(%s) "
        "GROUP BY tenant_id", ([exact.tenant.tenant_id, private.tenant.tenant_id],)).fetchall())
    assert frozen == {exact.tenant.tenant_id: 2 * release.FREEZE_DAYS_BACK}
    assert release.freeze_all(owner, sessions, now)["frozen_days"] == 0


def test_a_first_release_leaves_the_planner_as_it_found_it(tenant, sessions):
    """The complementary check hashes its joins (enable_nestloop off) for its own statement
    only: the rest of the request's transaction plans as usual."""
    world = World(tenant, sessions)
    crowd(world, 6, nine(C1), [MONDAY], "crowd")
    with world.session() as s:
        rows = reports.heatmap(s, world.principal, MONDAY, MONDAY + DAY, 9, now=LATER).rows
        assert rows and s.execute(text("SHOW enable_nestloop")).scalar() == "on"
