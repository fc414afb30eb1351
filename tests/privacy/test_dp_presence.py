"""Differential privacy and the presence of a cell (issue 16, attack 5).

With noise added only to the cells that have data, a cell resting on one person can appear
and an empty one never can: its presence singles that person out, whatever the noise. The
attack is run against that path (`release.Safeguards(dp_select=False, dp_bound=False)`, the
release before issue 16), where it succeeds, and against the default, where the cells that
appear are chosen by OpenDP's threshold mechanism over contributions bounded per
person-day, so the lone person's cell appears with probability at most about delta.

Every answer is asked afresh (no stored answer is replayed under DP), at an explicit `now`
in the attack world's March 2026.
"""

from __future__ import annotations

import datetime as dt
import math
import uuid

import h3.api.basic_int as h3
from sqlalchemy import text

from govern.domain import release, reports
from govern.privacy import dp
from tests.privacy.test_release_attacks import C1, DAY, HOUR, MONDAY, TravelWorld, nine

TRIALS = 60
WEAK = release.Safeguards(dp_select=False, dp_bound=False)

# one row a statement (executemany): Citus plans an INSERT ... SELECT FROM generate_series
# through the coordinator and COPYs the rows to the shard, which row-level security refuses
PLANT_PINGS = text(
    """
    INSERT INTO pings (tenant_id, device_id, subject_id, t, client_key, purpose_mask,
                       precision_m, geom)
    VALUES (:tenant_id, :device_id, :subject_id, :t, :client_key, :mask,
            10, ST_SetSRID(ST_MakePoint(:lon, :lat), 4326))
    """
)


class World(TravelWorld):
    """Under differential privacy the heatmap bounds each person-day, so it reads stored
    pings (the rollups keep no subject): planted here at each cell's centre, under the
    consented aggregate purpose."""

    def ping(self, subject: str, at, cell: int, n: int = 1) -> None:
        sid = self.subject(subject)
        lat, lon = h3.cell_to_latlng(cell)
        # the day's partition in its own transaction, as ingest creates it (the owner's
        # DDL and the app role's insert into the same placements in one transaction are
        # refused on Citus)
        with self.session() as s:
            s.execute(text("SELECT govern_ensure_ping_partition(CAST(:d AS date))"),
                      {"d": at.date()})
        with self.session() as s:
            s.execute(PLANT_PINGS, [{"tenant_id": self.tenant.tenant_id,
                                     "device_id": uuid.uuid5(uuid.NAMESPACE_URL, sid),
                                     "subject_id": sid, "t": at + i * dt.timedelta(seconds=1),
                                     "client_key": f"k{i}", "mask": self.mask,
                                     "lat": lat, "lon": lon} for i in range(1, n + 1)])


def _appearances(world: World, safeguards: release.Safeguards) -> int:
    """In how many answers a cell of a lone person appears (their pings land in the cell
    of their point at the aggregate purpose's precision)."""
    seen = 0
    for i in range(TRIALS):
        with world.session() as s:
            result = reports.heatmap(s, world.principal, MONDAY, MONDAY + DAY, 9,
                                     now=MONDAY + 2 * DAY + i * HOUR, safeguards=safeguards)
        seen += bool(result.rows)  # every cell with data rests on one person-day
    return seen


def _upper(seen: int, trials: int, alpha: float = 1e-9) -> float:
    """A one-sided upper confidence bound on a rate (Hoeffding), wrong with probability at
    most alpha."""
    return seen / trials + math.sqrt(math.log(1 / alpha) / (2 * trials))


def test_a_lone_persons_cell_appears_no_more_often_than_delta_allows(make_tenant, sessions):
    for name, safeguards in (("weak", WEAK), ("default", release.FULL)):
        world = World(make_tenant(f"presence-{name}"), sessions, dp_epsilon_per_query=0.5,
                      dp_epsilon_per_day=100.0)
        world.ping("lone", MONDAY + 10 * HOUR, nine(C1), n=3)
        world.ping("other", MONDAY + 10 * HOUR, nine(C1, 20), n=3)  # someone elsewhere
        seen = _appearances(world, safeguards)
        if name == "weak":
            # an empty cell never appears; the lone person's did, far more often than
            # e^eps * 0 + delta allows (lower bound: at least 3 of 60 is not chance)
            assert seen >= 3, f"the weakened path showed the lone cell {seen} times"
        else:
            # P(appears | the person-day) <= e^eps * P(appears | without it) + delta, and
            # without it the cell is empty, so never appears: the rate is at most delta.
            # 60 trials at rate <= 1e-6: any appearance has probability <= 6e-5.
            assert seen == 0, f"the lone person's cell appeared in {seen} of {TRIALS}"
            assert dp.DELTA_PER_QUERY < _upper(seen, TRIALS)  # consistent with the bound


def test_every_dp_answer_says_what_it_spent_per_person_day(tenant, sessions):
    world = World(tenant, sessions, dp_epsilon_per_query=0.5, dp_epsilon_per_day=2.0)
    with world.session() as s:
        result = reports.heatmap(s, world.principal, MONDAY, MONDAY + DAY + 2 * HOUR, 9,
                                 now=MONDAY + 3 * DAY)
    meta = result.meta()
    assert meta["mode"] == "differential_privacy"
    assert 0.49 <= meta["epsilon"] <= 0.5 + 1e-9 and 0 < meta["delta"] <= dp.DELTA_PER_QUERY
    budget = meta["budget"]
    assert budget["unit"] == "person-day" and budget["days"] == 2  # Monday and Tuesday
    assert budget["remaining"] == budget["epsilon_per_day"] - budget["spent"]
    assert meta["dp"]["max_groups_per_person_day"] == dp.BOUNDS["heatmap"].m
    assert [w["reason"] for w in meta["withheld"]] == ["below_threshold"]


def test_travel_buckets_are_a_public_domain(tenant, sessions):
    """Travel buckets under DP: every day of the range is a candidate, empty or not, so
    which buckets appear says nothing about who travelled (no threshold, no delta)."""
    from tests.privacy.test_release_attacks import OUTSIDE

    world = World(tenant, sessions, dp_epsilon_per_query=0.5, dp_epsilon_per_day=100.0,
                  k=2)
    world.trip("lone", MONDAY + 9 * HOUR, OUTSIDE[0], OUTSIDE[1])
    days = {(MONDAY + i * DAY).isoformat() for i in range(3)}
    seen = set()
    for i in range(20):
        result = world.report("travel", MONDAY, MONDAY + 3 * DAY, MONDAY + 4 * DAY + i * HOUR,
                              bucket="day")
        meta = result.meta()
        assert meta["dp"]["selection"] == "public_domain" and meta["delta"] == 0
        assert meta["budget"]["days"] == 3
        seen |= {r["bucket"] for r in result.rows}
    assert seen <= days
    # the empty Tuesday and Wednesday are as likely to show as the lone Monday: with k = 2
    # on the noisy count, each shows in some answers
    assert len(seen) >= 2
