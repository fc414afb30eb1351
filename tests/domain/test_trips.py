"""Stops and trips: stay-point detection on synthetic days with known ground truth, the
incremental build with late pings, governance of the derived records (purposes, precision,
ageing with retention)."""

from __future__ import annotations

import datetime as dt
import math

import h3.api.basic_int as h3
import pytest

from govern.db import make_engine
from govern.domain.retention import NEVER, Rules, run_all
from govern.domain.travel_ageing import age_travel
from govern.domain.trips import (
    Governance,
    build_tenant,
    h3_resolution_for,
    stop_rows,
    trip_rows,
)
from govern.policy.staypoints import Track, detect

DAY = dt.timedelta(days=1)
NAV = {"key": "navigation", "title": "Navigation", "precision_m": 10, "retention_days": 30,
       "individual_access": True, "reader_roles": ["dispatcher"]}
ANALYTICS = {"key": "analytics", "title": "Analytics", "precision_m": 500,
             "retention_days": 365, "aggregate_use": True, "individual_access": False}
TIME = {"key": "time_tracking", "title": "Time and mileage", "precision_m": 250,
        "retention_days": 400, "individual_access": True, "reader_roles": ["admin"]}

SITES = {"depot": (52.5300, 13.3350), "clinic": (52.5250, 13.3900),
         "store": (52.4970, 13.4200), "school": (52.5400, 13.4200)}
PLAN = [("depot", 20), ("clinic", 45), ("store", 30), ("depot", 15)]
MOVE_EVERY, STAY_EVERY, SPEED = 30, 60, 10.0


def haversine_m(a, b) -> float:
    (lat1, lon1), (lat2, lon2) = a, b
    p1, p2 = math.radians(lat1), math.radians(lat2)
    h = math.sin((p2 - p1) / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(
        math.radians(lon2 - lon1) / 2) ** 2
    return 2 * 6_371_008.8 * math.asin(math.sqrt(h))


def _jitter(k: int, metres: float) -> tuple[float, float]:
    """Deterministic GPS noise of at most `metres` (north, east)."""
    return metres * math.sin(k * 1.7), metres * math.cos(k * 2.3)


def worker_day(start: dt.datetime, plan=PLAN, *, jitter_m: float = 8.0, prefix: str = "p"):
    """A worker's day: stays at sites (a ping a minute, within a few metres), driving
    straight between them at SPEED (a ping every 30 s, the last one at the next site).
    Returns the pings and the ground truth: stops (site, arrival, departure) and trips
    (origin, destination, departure, arrival, distance in metres)."""
    pings, stops, trips = [], [], []
    t = start
    pos = SITES[plan[0][0]]

    def add(lat, lon, when, k):
        north, east = _jitter(k, jitter_m)
        pings.append({"id": f"{prefix}{len(pings)}", "t": when.isoformat(), "acc": 5,
                      "lat": lat + north / 111_320,
                      "lon": lon + east / (111_320 * math.cos(math.radians(lat)))})

    for n, (site, dwell) in enumerate(plan):
        target = SITES[site]
        if n:
            dist = haversine_m(pos, target)
            steps = math.ceil(dist / (SPEED * MOVE_EVERY))
            departed = t
            for s in range(1, steps + 1):
                f = s / steps
                t += dt.timedelta(seconds=MOVE_EVERY)
                add(pos[0] + (target[0] - pos[0]) * f, pos[1] + (target[1] - pos[1]) * f, t,
                    len(pings))
            trips.append((plan[n - 1][0], site, departed, t, dist))
        else:
            add(*target, t, 0)
        arrived = t
        for _ in range(dwell * 60 // STAY_EVERY):
            t += dt.timedelta(seconds=STAY_EVERY)
            add(*target, t, len(pings))
        stops.append((site, arrived, t))
        pos = target
    return pings, stops, trips


def midnight(days_ago: int) -> dt.datetime:
    today = dt.datetime.now(dt.UTC).date()
    return dt.datetime.combine(today - dt.timedelta(days=days_ago), dt.time(0), dt.UTC)


def add_sites(tenant, radius_m: float = 150) -> dict:
    ids = {}
    for name, (lat, lon) in SITES.items():
        resp = tenant.post("/v1/sites", {"name": name, "kind": "customer",
                                         "geometry": {"type": "Point", "coordinates": [lon, lat]},
                                         "radius_m": radius_m})
        assert resp.status_code == 201, resp.get_json()
        ids[name] = resp.get_json()["site_id"]
    return ids


def post(tracked, pings):
    for k in range(0, len(pings), 1000):
        body = tracked.pings(pings[k:k + 1000]).get_json()
        assert body["accepted"] == len(pings[k:k + 1000]), body


def stops_of(superuser, subject_id):
    return superuser.execute(
        "SELECT s.started_at, s.ended_at, s.duration_s, x.name, s.purpose_mask, "
        "s.precision_m, s.cell FROM stops s LEFT JOIN sites x USING (tenant_id, site_id) "
        "WHERE s.subject_id = %s ORDER BY s.started_at", (subject_id,)).fetchall()


def trips_of(superuser, subject_id):
    return superuser.execute(
        "SELECT t.started_at, t.ended_at, t.distance_m, o.name, d.name, t.moving_s, "
        "t.from_stop, t.to_stop, t.purpose_mask FROM trips t "
        "LEFT JOIN sites o ON o.tenant_id = t.tenant_id AND o.site_id = t.origin_site_id "
        "LEFT JOIN sites d ON d.tenant_id = t.tenant_id AND d.site_id = t.dest_site_id "
        "WHERE t.subject_id = %s ORDER BY t.started_at", (subject_id,)).fetchall()


@pytest.fixture
def worker(tenant, make_tracked):
    add_sites(tenant)
    return make_tracked(tenant, purposes=(NAV, ANALYTICS, TIME),
                        consent=("navigation", "analytics", "time_tracking"),
                        consent_at=dt.datetime.now(dt.UTC) - 40 * DAY)


def assert_matches_truth(superuser, subject_id, truth_stops, truth_trips):
    stops, trips = stops_of(superuser, subject_id), trips_of(superuser, subject_id)
    assert [s[3] for s in stops] == [s[0] for s in truth_stops]
    for got, (_, arrived, departed) in zip(stops, truth_stops, strict=True):
        assert abs((got[0] - arrived).total_seconds()) <= STAY_EVERY
        assert abs((got[1] - departed).total_seconds()) <= STAY_EVERY
        assert abs(got[2] - (departed - arrived).total_seconds()) <= STAY_EVERY  # dwell
    assert [(t[3], t[4]) for t in trips] == [(o, d) for o, d, *_ in truth_trips]
    for got, (_, _, departed, arrived, dist) in zip(trips, truth_trips, strict=True):
        assert got[2] == pytest.approx(dist, rel=0.05)
        assert abs((got[0] - departed).total_seconds()) <= STAY_EVERY
        assert abs((got[1] - arrived).total_seconds()) <= STAY_EVERY
        assert got[5] == pytest.approx((arrived - departed).total_seconds(), abs=MOVE_EVERY)
        assert got[6] and got[7]
    return stops, trips


# ---- pure detection ------------------------------------------------------------------------------

def _track(points, mask=0b11, prec=10):
    """points: (seconds, lat, lon); step lengths by haversine."""
    rows = []
    for k, (t, lat, lon) in enumerate(points):
        step = haversine_m(points[k - 1][1:], (lat, lon)) if k else 0.0
        rows.append((float(t), lon, lat, mask, prec, step))
    return Track.of(rows)


def test_stays_trips_gaps_and_outliers_without_a_database():
    base = (52.5, 13.4)
    east = (52.5, 13.4 + 2000 / 67_800)  # about 2 km east
    pts = [(60 * k, *base) for k in range(10)]  # 9 minutes at base
    pts += [(540 + 30 * k, 52.5, 13.4 + k * 300 / 67_800) for k in range(1, 7)]  # drive 1.8 km
    pts += [(720 + 60 * k, *east) for k in range(0, 8)]  # 7 minutes east...
    pts += [(1200, 52.5 + 400 / 111_320, east[1])]  # ...a 400 m GPS outlier...
    pts += [(1260 + 60 * k, *east) for k in range(0, 8)]  # ...and 7 more minutes
    pts += [(1260 + 420 + 3600, 52.6, 13.6)]  # an hour of silence, then far away
    pts += [(1260 + 420 + 3600 + 60 * k, 52.6, 13.6) for k in range(1, 7)]
    stops, trips = detect(_track(pts), 100, 300)
    # the outlier does not split the stay east; the silence does not make a trip
    assert [(s.first, s.last) for s in stops] == [(0, 9), (16, 32), (33, 39)]
    assert len(trips) == 1 and trips[0].from_stop and trips[0].to_stop
    assert trips[0].distance_m == pytest.approx(2000, rel=0.05)


def test_a_silent_stay_is_a_stay_and_trips_need_a_radius():
    pts = [(0, 52.5, 13.4), (3600, 52.5, 13.4003)]  # two pings an hour apart, 20 m apart
    stops, trips = detect(_track(pts), 100, 300)
    assert [(s.first, s.last) for s in stops] == [(0, 1)] and trips == []
    jitter = [(30 * k, 52.5 + (k % 2) * 0.0003, 13.4) for k in range(6)]  # 33 m, 2.5 min
    assert detect(_track(jitter), 100, 300) == ([], [])


def test_a_record_serves_only_what_all_its_pings_serve():
    pts = [(60 * k, 52.5, 13.4) for k in range(10)]
    pts += [(570 + 30 * k, 52.5, 13.4 + k * 300 / 67_800) for k in range(1, 8)]
    track = _track(pts)
    track.mask[12] = 0b10  # one ping of the trip lost purpose 0 (say, consent withdrawn)
    track.prec[12] = 500
    stops, trips = detect(track, 100, 300)
    gov = Governance(100, 300, {0: 10, 1: 500})
    srows, trows = stop_rows(track, stops, gov), trip_rows(track, trips, gov)
    assert srows["mask"] == [0b11] and srows["prec"] == [10]
    assert trows["mask"] == [0b10] and trows["prec"] == [500]
    assert h3.get_resolution(trows["ocell"][0]) == 8
    track.mask[12] = 0b100  # nothing in common: no trip at all
    assert trip_rows(track, trips, Governance(100, 300, {0: 10, 1: 500, 2: 50}))["t0"] == []


def test_h3_helpers_agree_with_the_h3_library(superuser):
    cell = h3.latlng_to_cell(52.52, 13.405, 8)
    for res in (8, 7, 5, 0):
        got = superuser.execute("SELECT govern_h3_parent(%s, %s)", (cell, res)).fetchone()[0]
        assert got == h3.cell_to_parent(cell, res)
    for p in (1, 10, 799, 800, 2114, 2115, 5000, 20_000, 10 ** 6):
        sql_res = superuser.execute("SELECT govern_h3_res_for(%s)", (p,)).fetchone()[0]
        assert sql_res == h3_resolution_for(p), p


# ---- building from governed pings -------------------------------------------------------------

def test_a_worker_day_gives_the_true_stops_dwell_times_and_distances(
        worker, sessions, superuser):
    pings, truth_stops, truth_trips = worker_day(midnight(2) + dt.timedelta(hours=7))
    post(worker, pings)
    result = build_tenant(sessions, worker.tenant.tenant_id)
    assert (result.subjects, result.stops, result.trips) == (1, 4, 3)
    stops, trips = assert_matches_truth(superuser, worker.subject_id, truth_stops, truth_trips)
    assert all(s[4] == 0b111 and s[5] == 10 for s in stops)  # all three purposes, at 10 m
    assert all(h3.get_resolution(s[6]) == 8 for s in stops)
    # nothing new: a second run does nothing
    assert build_tenant(sessions, worker.tenant.tenant_id).subjects == 0


def test_late_and_out_of_order_pings_rebuild_only_what_they_touch(
        worker, sessions, superuser):
    pings, truth_stops, truth_trips = worker_day(midnight(3) + dt.timedelta(hours=7))
    third = len(pings) // 3
    for chunk in (pings[third:2 * third], pings[2 * third:], pings[:third]):
        post(worker, chunk)  # the morning arrives last (a phone that was offline)
        build_tenant(sessions, worker.tenant.tenant_id)
    assert_matches_truth(superuser, worker.subject_id, truth_stops, truth_trips)


def test_a_day_in_progress_grows_as_pings_arrive(worker, sessions, superuser):
    pings, truth_stops, truth_trips = worker_day(midnight(1) + dt.timedelta(hours=7))
    cut = len(pings) // 2
    post(worker, pings[:cut])
    build_tenant(sessions, worker.tenant.tenant_id)
    partial = stops_of(superuser, worker.subject_id)
    assert 1 <= len(partial) < 4
    post(worker, pings[cut:])
    build_tenant(sessions, worker.tenant.tenant_id)
    assert_matches_truth(superuser, worker.subject_id, truth_stops, truth_trips)


# ---- ageing --------------------------------------------------------------------------------------

def _purposes(sessions, tenant_id):
    from sqlalchemy import select

    from govern.db import tenant_session
    from govern.models import Purpose

    with tenant_session(sessions, tenant_id) as s:
        return list(s.scalars(select(Purpose).order_by(Purpose.bit)))


def _age(sessions, tenant_id, now, touch_bits, t_to):
    rules = Rules.of(_purposes(sessions, tenant_id), now)
    params = {**rules.params(), "tenant_id": tenant_id, "t_from": NEVER, "t_to": t_to,
              "subject_id": None, "held": [], "touch_bits": touch_bits, "extra_clear": 0,
              "batch": 2}
    return age_travel(sessions, tenant_id, params)


def test_travel_ages_like_its_pings_coarsening_cells_and_sites(
        tenant, make_tracked, sessions, superuser):
    coarse = {**ANALYTICS, "precision_m": 1000}
    add_sites(tenant, radius_m=30)
    worker = make_tracked(tenant, purposes=(NAV, coarse), consent=("navigation", "analytics"),
                          consent_at=dt.datetime.now(dt.UTC) - 40 * DAY)
    pings, _, _ = worker_day(midnight(2) + dt.timedelta(hours=7), jitter_m=0)
    post(worker, pings)
    build_tenant(sessions, tenant.tenant_id)
    before = superuser.execute("SELECT cell, site_id FROM stops ORDER BY started_at").fetchall()
    assert all(site is not None for _, site in before)
    now = dt.datetime.now(dt.UTC) + 31 * DAY  # navigation's 30 days are over
    counts = _age(sessions, tenant.tenant_id, now, 0b01, now - 30 * DAY)
    assert counts == {"stops": {"aged": 4, "deleted": 0}, "trips": {"aged": 3, "deleted": 0}}
    after = superuser.execute("SELECT cell, site_id, purpose_mask, precision_m, lon, lat "
                              "FROM stops ORDER BY started_at").fetchall()
    assert all(r[2] == 0b10 and r[3] == 1000 for r in after)
    assert [r[0] for r in after] == [h3.cell_to_parent(c, 7) for c, _ in before]
    from govern.policy.precision import snap
    assert all((r[5], r[4]) == pytest.approx(snap(r[5], r[4], 1000)) for r in after)
    # a 1 km point cannot tell which 30 m site it was at: attribution is redone from it
    assert sum(r[1] is not None for r in after) < len(after)
    trips = superuser.execute("SELECT purpose_mask, precision_m, origin_cell, dest_cell "
                              "FROM trips").fetchall()
    assert all(t[:2] == (0b10, 1000) and h3.get_resolution(t[2]) == 7 for t in trips)
    now = dt.datetime.now(dt.UTC) + 366 * DAY
    counts = _age(sessions, tenant.tenant_id, now, 0b10, now - 365 * DAY)
    assert counts == {"stops": {"aged": 0, "deleted": 4}, "trips": {"aged": 0, "deleted": 3}}




def test_retention_removes_travel_built_from_pings_past_their_window(
        worker, sessions, superuser, config):
    pings, _, _ = worker_day(midnight(2) + dt.timedelta(hours=7))
    post(worker, pings)
    build_tenant(sessions, worker.tenant.tenant_id)
    owner = make_engine(config.database_url, pool_size=1)
    try:
        tid = worker.tenant.tenant_id
        run_all(owner, sessions, dt.datetime.now(dt.UTC) + 31 * DAY, tenant_id=tid)
        assert superuser.execute("SELECT count(*) FROM trips WHERE purpose_mask & 1 <> 0"
                                 ).fetchone()[0] == 0  # navigation left the trips too
        assert superuser.execute("SELECT count(*) FROM trips").fetchone()[0] == 3
        run_all(owner, sessions, dt.datetime.now(dt.UTC) + 401 * DAY, tenant_id=tid)
        for table in ("pings", "stops", "trips"):
            assert superuser.execute(f"SELECT count(*) FROM {table}").fetchone()[0] == 0
    finally:
        owner.dispose()


def test_cli_and_scheduler_job_build(worker, config, sessions, superuser, monkeypatch):
    import json

    from click.testing import CliRunner

    from govern import jobs
    from govern.cli import main
    from govern.clock import SYSTEM

    pings, truth_stops, truth_trips = worker_day(midnight(2) + dt.timedelta(hours=7))
    post(worker, pings[:100])
    monkeypatch.setenv("DATABASE_URL", config.database_url)
    result = CliRunner().invoke(main, ["trips", "build", "--tenant",
                                       str(worker.tenant.tenant_id)])
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout[result.stdout.index("{"):])
    assert out["subjects"] == 1 and out["pings"] == 100
    post(worker, pings[100:])
    assert jobs.trips(config, SYSTEM.now())["subjects"] == 1
    assert_matches_truth(superuser, worker.subject_id, truth_stops, truth_trips)
