"""Rollup periods: a built week or month answers exactly as the hourly rollups do, a late ping
unmarks its period until it is built again, aggregate retention is honoured, and a build and
a late ping take turns."""

import datetime as dt
import threading
import time

import pytest

from govern.db import tenant_session
from govern.domain import rollup_periods as rp
from govern.domain.policy import current_policy
from govern.domain.reports import heatmap_rows
from govern.domain.retention import run_all
from govern.sql import reports as sql
from tests.tracking import ping

DAY = dt.timedelta(days=1)
AGG = {"key": "analytics", "title": "Analytics", "precision_m": 100, "retention_days": 400,
       "aggregate_use": True}
SPOT = (52.5200, 13.4050)
NEAR = (52.5230, 13.4120)  # another resolution-9 cell, the same resolution-5 cell
ELSEWHERE = (48.1374, 11.5755)


def z(t: dt.datetime) -> str:
    return t.isoformat().replace("+00:00", "Z")


def now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def last_month() -> dt.datetime:
    """A closed month that does not overlap last_week() (on the first days of a month,
    last week lies inside last month, and the two plantings would add up)."""
    return rp.month_start(rp.month_start(last_week()) - DAY)


def last_week() -> dt.datetime:
    return rp.week_start(now()) - 7 * DAY


@pytest.fixture
def crowd(tenant, make_tracked):
    """Subjects posting under an aggregate purpose; `add(place, times)` makes one."""
    # these tests ask for the period that has just ended: no settling delay (settling is
    # tested in tests/privacy)
    tenant.patch("/v1/policy", {"k_min_subjects": 2, "release_delay_hours": 0})
    n = {"i": 0}

    def add(place, when):
        n["i"] += 1
        t = make_tracked(tenant, purposes=[AGG] if n["i"] == 1 else [], consent=("analytics",),
                         consent_at=now() - 100 * DAY, identifier=None,
                         subject={"external_ref": f"w{n['i']}"})
        body = t.pings([ping(lat=place[0], lon=place[1], t=w.isoformat(), id=f"{n['i']}-{i}")
                        for i, w in enumerate(when)]).get_json()
        assert body["accepted"] == len(when), body
        return t

    return add


def noon(start: dt.datetime, day: int) -> dt.datetime:
    return start + day * DAY + dt.timedelta(hours=12)


@pytest.fixture
def populated(crowd):
    """Last week and last month with released, suppressed and sticky-suppressed cells."""
    for start in (last_week(), last_month()):
        for _ in range(3):
            crowd(SPOT, [noon(start, 1), noon(start, 2), noon(start, 2) + dt.timedelta(hours=1)])
        crowd(NEAR, [noon(start, 1)])
        crowd(NEAR, [noon(start, 1), noon(start, 3)])  # day 3 has one subject: sticky
        crowd(ELSEWHERE, [noon(start, 2)])


def hourly(sessions, tenant_id, period, start, res):
    start, end = rp.period_bounds(period, start)
    with tenant_session(sessions, tenant_id) as s:
        return [tuple(r) for r in s.execute(sql.heatmap(res), {"tenant_id": tenant_id,
                                                               "t_from": start, "t_to": end})]


def built(sessions, tenant_id, period, start, res):
    with tenant_session(sessions, tenant_id) as s:
        rows = rp.period_cells(s, period, start, res)
    return None if rows is None else [tuple(r) for r in rows]


def heatmap(tenant, period, start, res):
    _, end = rp.period_bounds(period, start)
    resp = tenant.get("/v1/reports/heatmap", token=tenant.token_for("analyst"),
                      query_string={"from": z(start), "to": z(end), "resolution": res})
    assert resp.status_code == 200, resp.get_json()
    body = resp.get_json()
    return ({f["properties"]["cell"]: (f["properties"]["pings"], f["properties"]["subjects"])
             for f in body["features"]}, body["properties"]["suppressed"])


PERIODS = [("week", last_week), ("month", last_month)]


@pytest.mark.parametrize("period,start", PERIODS)
def test_a_built_period_answers_exactly_as_the_hourly_rollups(tenant, populated, sessions,
                                                             period, start):
    start = start()
    tid = tenant.tenant_id
    before = {res: heatmap(tenant, period, start, res) for res in rp.RESOLUTIONS}
    assert built(sessions, tid, period, start, 9) is None
    report = rp.build_tenant(sessions, tid, now())
    assert report["built"] >= 2 and report["left"] == 0
    for res in rp.RESOLUTIONS:
        assert built(sessions, tid, period, start, res) == hourly(sessions, tid, period,
                                                                  start, res)
        assert heatmap(tenant, period, start, res) == before[res]
    cells, suppressed = before[9]
    assert sorted(v for v in cells.values()) == [(9, 3)]  # SPOT: 3 subjects, 9 pings
    assert suppressed == 2  # NEAR (sticky: one subject on day 3) and ELSEWHERE
    assert before[5] == ({}, 2)  # SPOT and NEAR share a cell, with one subject on day 3


def test_closed_periods_are_built_from_the_first_rollup_on(tenant, crowd, sessions):
    assert rp.build_tenant(sessions, tenant.tenant_id, now())["built"] == 0
    week = rp.week_start(now()) - 7 * DAY  # the week just gone: the only closed week since
    first = noon(week, 1)
    crowd(SPOT, [first])
    report = rp.build_tenant(sessions, tenant.tenant_id, now())
    # its week, and its month when that has closed too; nothing before
    month_closed = rp.month_start(first) < rp.month_start(now())
    assert (report["built"], report["left"]) == (1 + month_closed, 0)
    assert built(sessions, tenant.tenant_id, "week", week, 9) == [
        r for r in hourly(sessions, tenant.tenant_id, "week", week, 9)]


@pytest.mark.parametrize("period,start", PERIODS)
def test_a_late_ping_unmarks_its_period_until_built_again(tenant, populated, crowd, sessions,
                                                          period, start):
    start = start()
    tid = tenant.tenant_id
    rp.build_tenant(sessions, tid, now())
    late = crowd(SPOT, [noon(start, 1)])  # uploaded days later
    assert built(sessions, tid, period, start, 9) is None
    cells, _ = heatmap(tenant, period, start, 9)
    assert sorted(cells.values()) == [(10, 4)]  # read from the hourly rollups meanwhile
    rp.build_tenant(sessions, tid, now())
    assert built(sessions, tid, period, start, 9) == hourly(sessions, tid, period, start, 9)
    assert sorted(r[1:3] for r in built(sessions, tid, period, start, 9)) == [
        (1, 1), (3, 2), (10, 4)]  # ELSEWHERE, NEAR, SPOT
    assert heatmap(tenant, period, start, 9)[0] == cells
    assert late.subject_id


def test_live_pings_leave_built_periods_alone(tenant, populated, crowd, sessions):
    rp.build_tenant(sessions, tenant.tenant_id, now())
    # a live ping: in the open week and month, even a minute into a new one
    live = max(now() - dt.timedelta(minutes=5), rp.week_start(now()), rp.month_start(now()))
    crowd(SPOT, [live])
    assert built(sessions, tenant.tenant_id, "week", last_week(), 9) is not None
    assert built(sessions, tenant.tenant_id, "month", last_month(), 9) is not None


def test_periods_past_aggregate_retention_are_neither_served_nor_kept(tenant, populated,
                                                                      sessions, owner,
                                                                      superuser):
    tid = tenant.tenant_id
    rp.build_tenant(sessions, tid, now())
    assert tenant.patch("/v1/policy", {"aggregate_retention_days": 1}).status_code == 200
    for period, start in PERIODS:
        # the retention job has not run: the rollups are there, but not served
        assert heatmap(tenant, period, start(), 9) == ({}, 0)
        with tenant_session(sessions, tid) as s:
            _, end = rp.period_bounds(period, start())
            assert heatmap_rows(s, current_policy(s), start(), end, 9) == []
    assert rp.build_tenant(sessions, tid, now())["built"] == 0
    run_all(owner, sessions, now(), tenant_id=tid)
    for table in ("rollup_periods", "rollup_period_cells", "rollups"):
        left = superuser.execute(f"SELECT count(*) FROM {table} WHERE tenant_id = %s",
                                 (tid,)).fetchone()[0]
        assert left == 0, table


def _someone_waits_for_an_advisory_lock(superuser) -> bool:
    return superuser.execute("SELECT EXISTS (SELECT 1 FROM pg_locks WHERE locktype = "
                             "'advisory' AND NOT granted)").fetchone()[0]


def test_a_build_and_a_late_ping_take_turns(tenant, populated, crowd, sessions, superuser):
    """A late ping arriving while its period is being built waits for the build, then unmarks
    it: the period is never marked built without a ping committed before the mark."""
    tid = tenant.tenant_id
    start = last_week()
    outcome = {}

    with tenant_session(sessions, tid) as s:
        rp.build_period(s, tid, "week", start)  # holds the tenant's period lock until commit

        def late():
            outcome["tracked"] = crowd(SPOT, [noon(start, 2)])

        poster = threading.Thread(target=late)
        poster.start()
        deadline = time.monotonic() + 60  # a condition, not a nap: the post waits on the lock
        while not _someone_waits_for_an_advisory_lock(superuser):
            assert poster.is_alive(), "the late ping did not wait for the build"
            assert time.monotonic() < deadline, "the late ping never reached the lock"
            time.sleep(0.05)
        assert "tracked" not in outcome
    poster.join(60)
    assert "tracked" in outcome
    assert built(sessions, tid, "week", start, 9) is None
    cells, _ = heatmap(tenant, "week", start, 9)
    assert sorted(cells.values()) == [(10, 4)]


def test_closed_periods_are_whole_weeks_and_months_newest_first():
    at = dt.datetime(2026, 11, 22, 10, tzinfo=dt.UTC)  # a Sunday
    got = list(rp.closed_periods(at, dt.datetime(2026, 9, 20, tzinfo=dt.UTC)))
    weeks = [s for p, s in got if p == "week"]
    months = [s for p, s in got if p == "month"]
    assert weeks[0] == dt.datetime(2026, 11, 9, tzinfo=dt.UTC)  # this week is still open
    assert weeks[-1] == dt.datetime(2026, 9, 21, tzinfo=dt.UTC)
    assert all(w.weekday() == 0 for w in weeks)
    assert months == [dt.datetime(2026, 10, 1, tzinfo=dt.UTC)]  # September starts too early
    assert rp.period_bounds("month", months[0])[1] == dt.datetime(2026, 11, 1, tzinfo=dt.UTC)


def test_only_pings_in_a_closed_week_or_month_touch_periods():
    at = dt.datetime(2026, 12, 2, 10, tzinfo=dt.UTC)  # Wednesday; the week began in November
    assert not rp.touches_closed_period(dt.datetime(2026, 12, 1, 23, tzinfo=dt.UTC), at)
    # 30 November: this week is open, but November has closed
    assert rp.touches_closed_period(dt.datetime(2026, 11, 30, 23, tzinfo=dt.UTC), at)
    at = dt.datetime(2026, 12, 9, 10, tzinfo=dt.UTC)
    assert rp.touches_closed_period(dt.datetime(2026, 12, 2, tzinfo=dt.UTC), at)
    assert not rp.touches_closed_period(dt.datetime(2026, 12, 7, tzinfo=dt.UTC), at)
