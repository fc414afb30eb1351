"""A privacy zone drawn after pings were stored: reads hide them at once, and the next
retention run deletes them (and the stops and trips there) from disk, sparing held
subjects until their hold ends."""

import datetime as dt

import pytest

from govern.domain.retention import run_all
from tests.tracking import ping

DAY = dt.timedelta(days=1)
NAV = {"key": "navigation", "title": "Nav", "precision_m": 10, "retention_days": 30,
       "individual_access": True, "reader_roles": ["dispatcher"]}
HOME = (52.5200, 13.4050)
WORK = (52.5300, 13.3800)


def run(owner, sessions, tenant, **kw):
    return run_all(owner, sessions, dt.datetime.now(dt.UTC), tenant_id=tenant.tenant_id, **kw)


def circle(tenant, centre, subject_id=None, radius_m=150):
    body = {"name": "home", "geometry": {"type": "Point", "coordinates": [centre[1], centre[0]]},
            "radius_m": radius_m}
    if subject_id:
        body["subject_id"] = subject_id
    resp = tenant.post("/v1/zones", body)
    assert resp.status_code == 201, resp.get_json()
    return resp.get_json()["zone_id"]


def stored(superuser, subject_id) -> list[tuple[float, float]]:
    return [(round(lat, 3), round(lon, 3)) for lat, lon in superuser.execute(
        "SELECT ST_Y(geom), ST_X(geom) FROM pings WHERE subject_id = %s ORDER BY t",
        (subject_id,))]


def zone_entries(tenant) -> list[dict]:
    resp = tenant.get("/v1/retention/runs")
    assert resp.status_code == 200, resp.get_json()
    return [e for e in resp.get_json()["runs"] if e["kind"] == "zone"]


@pytest.fixture
def worker(tenant, make_tracked):
    n = {"i": 0}

    def make():
        n["i"] += 1
        t = make_tracked(tenant, purposes=[NAV] if n["i"] == 1 else [],
                         consent=("navigation",), consent_at=dt.datetime.now(dt.UTC) - 5 * DAY,
                         subject={"external_ref": f"w{n['i']}"})
        body = t.pings([ping(lat=HOME[0], lon=HOME[1], id="h1"),
                        ping(lat=WORK[0], lon=WORK[1], id="w1"),
                        ping(lat=HOME[0] + 0.0003, lon=HOME[1], id="h2",
                             t=(dt.datetime.now(dt.UTC) - 2 * DAY).isoformat())]).get_json()
        assert body["accepted"] == 3, body
        return t

    return make


def test_a_zone_drawn_later_leaves_the_disk_at_the_next_run(tenant, worker, owner, sessions,
                                                             superuser):
    a, b = worker(), worker()
    circle(tenant, HOME)
    assert len(stored(superuser, a.subject_id)) == 3  # hidden from reads, still on disk
    run(owner, sessions, tenant)
    assert stored(superuser, a.subject_id) == [WORK]
    assert stored(superuser, b.subject_id) == [WORK]
    entries = zone_entries(tenant)
    assert [e["deleted"] for e in entries] == [4]
    run(owner, sessions, tenant)  # swept once: the next run does not sweep it again
    assert len(zone_entries(tenant)) == 1


def test_a_subjects_zone_deletes_only_that_subjects_pings(tenant, worker, owner, sessions,
                                                           superuser):
    a, b = worker(), worker()
    circle(tenant, HOME, subject_id=a.subject_id)
    report = run_all(owner, sessions, dt.datetime.now(dt.UTC), tenant_id=tenant.tenant_id,
                     dry_run=True)
    assert len(stored(superuser, a.subject_id)) == 3  # a dry run deletes nothing
    assert report is not None
    run(owner, sessions, tenant)
    assert stored(superuser, a.subject_id) == [WORK]
    assert len(stored(superuser, b.subject_id)) == 3
    assert zone_entries(tenant)[0]["details"]["subject_id"] == a.subject_id


def test_a_held_subject_keeps_its_pings_until_the_hold_ends(tenant, worker, owner, sessions,
                                                            superuser):
    a, b = worker(), worker()
    resp = tenant.post("/v1/legal-holds", {"subject_id": a.subject_id, "reason": "case 17"})
    assert resp.status_code == 201, resp.get_json()
    hold_id = resp.get_json()["hold_id"]
    circle(tenant, HOME)
    run(owner, sessions, tenant)
    assert len(stored(superuser, a.subject_id)) == 3
    assert stored(superuser, b.subject_id) == [WORK]
    assert tenant.post(f"/v1/legal-holds/{hold_id}/end", {}).status_code == 200
    run(owner, sessions, tenant)
    assert stored(superuser, a.subject_id) == [WORK]


def test_a_tenant_wide_hold_pauses_sweeping(tenant, worker, owner, sessions, superuser):
    a = worker()
    tenant.post("/v1/legal-holds", {"reason": "regulator inquiry"})
    circle(tenant, HOME)
    run(owner, sessions, tenant)
    assert len(stored(superuser, a.subject_id)) == 3


def test_stops_and_trips_in_a_zone_go_too(tenant, worker, owner, sessions, superuser):
    a = worker()
    run(owner, sessions, tenant)  # the trips build has seen these pings: it leaves these alone
    t0 = dt.datetime.now(dt.UTC) - 3 * DAY
    values = {"t": tenant.tenant_id, "s": a.subject_id, "a": t0, "b": t0 + DAY,
              "hlon": HOME[1], "hlat": HOME[0], "wlon": WORK[1], "wlat": WORK[0]}
    superuser.execute(
        "INSERT INTO stops (tenant_id, subject_id, started_at, ended_at, duration_s, lon, lat, "
        "cell, pings, purpose_mask, precision_m) VALUES "
        "(%(t)s, %(s)s, %(a)s, %(a)s, 0, %(hlon)s, %(hlat)s, 1, 3, 1, 10), "
        "(%(t)s, %(s)s, %(b)s, %(b)s, 0, %(wlon)s, %(wlat)s, 1, 3, 1, 10)",
        values)
    superuser.execute(
        "INSERT INTO trips (tenant_id, subject_id, started_at, ended_at, duration_s, moving_s, "
        "distance_m, origin_lon, origin_lat, origin_cell, dest_lon, dest_lat, dest_cell, "
        "from_stop, to_stop, pings, purpose_mask, precision_m) VALUES "
        "(%(t)s, %(s)s, %(a)s, %(a)s, 0, 0, 1, %(wlon)s, %(wlat)s, 1, %(hlon)s, %(hlat)s, 1, "
        " true, true, 2, 1, 10), "
        "(%(t)s, %(s)s, %(b)s, %(b)s, 0, 0, 1, %(wlon)s, %(wlat)s, 1, %(wlon)s, %(wlat)s, 1, "
        " true, true, 2, 1, 10)",
        values)
    count = "SELECT (SELECT count(*) FROM stops), (SELECT count(*) FROM trips)"
    before = superuser.execute(count).fetchone()
    circle(tenant, HOME)
    run(owner, sessions, tenant)
    after = superuser.execute(count).fetchone()
    left = superuser.execute("SELECT (SELECT array_agg(lat) FROM stops), "
                             "(SELECT array_agg(dest_lat) FROM trips)").fetchone()
    assert left == ([WORK[0]], [WORK[0]])
    details = zone_entries(tenant)[0]["details"]
    assert (details["stops"], details["trips"]) == (before[0] - after[0], before[1] - after[1])
