"""POST /v1/pings: per-ping judgement, every drop reason, retries, precision on disk."""

import datetime as dt
import math
import random

import pytest

from tests.tracking import now_iso, ping

H = dt.timedelta(hours=1)


@pytest.fixture
def tracked(tenant, make_tracked):
    return make_tracked(tenant)


def stored(superuser, tracked):
    return superuser.execute(
        "SELECT t, ST_Y(geom), ST_X(geom), precision_m, purpose_mask, client_key, alt "
        "FROM pings WHERE subject_id = %s ORDER BY t", (tracked.subject_id,)).fetchall()


def test_valid_batch_is_accepted_and_stored(tracked, superuser):
    resp = tracked.pings([ping(id="a"), ping(id="b", lat=52.53)])
    assert resp.status_code == 200, resp.get_json()
    assert resp.get_json() == {"accepted": 2, "duplicates": 0, "dropped": {}, "rejected": []}
    assert len(stored(superuser, tracked)) == 2


def test_bad_ping_is_rejected_alone(tracked, superuser):
    resp = tracked.pings([ping(id="ok"), {"id": "bad", "t": now_iso(), "lat": 91, "lon": 0},
                          "nonsense"])
    body = resp.get_json()
    assert body["accepted"] == 1
    assert [r["index"] for r in body["rejected"]] == [1, 2]
    assert body["rejected"][0]["id"] == "bad" and "lat" in body["rejected"][0]["errors"]
    assert len(stored(superuser, tracked)) == 1


def test_retried_batch_stores_nothing_twice(tracked, superuser):
    batch = [ping(id=str(i), lat=52.5 + i / 1000) for i in range(5)]
    assert tracked.pings(batch).get_json()["accepted"] == 5
    again = tracked.pings(batch).get_json()
    assert again["accepted"] == 0 and again["duplicates"] == 5
    assert len(stored(superuser, tracked)) == 5


def test_pings_without_id_dedupe_on_time(tracked, superuser):
    t = now_iso(-H)
    assert tracked.pings([ping(t=t), ping(t=t)]).get_json()["duplicates"] == 1
    assert len(stored(superuser, tracked)) == 1


def test_no_consent_at_recording_time_is_dropped(tenant, make_tracked, superuser):
    granted = dt.datetime.now(dt.UTC) - 2 * H
    tracked = make_tracked(tenant, consent_at=granted)
    before = (granted - dt.timedelta(minutes=1)).isoformat()
    after = (granted + dt.timedelta(minutes=1)).isoformat()
    body = tracked.pings([ping(t=before, id="1"), ping(t=after, id="2")]).get_json()
    assert body["accepted"] == 1 and body["dropped"] == {"no_consent": 1}


def test_withdrawn_consent_drops_later_pings_and_late_uploads_of_earlier_ones(tracked):
    for key in ("navigation", "analytics"):
        tracked.post("/v1/device/consents", {"purpose": key, "status": "withdrawn",
                                             "policy_version": "v1"})
    before = ping(id="before", t=now_iso(-dt.timedelta(minutes=5)))  # consented then
    after = ping(id="after", t=now_iso(dt.timedelta(seconds=1)))
    body = tracked.pings([before, after]).get_json()
    assert body["accepted"] == 0 and body["dropped"] == {"no_consent": 2}


def test_privacy_zone_drops(tenant, tracked):
    tenant.post("/v1/zones", {"name": "home", "subject_id": tracked.subject_id,
                              "geometry": {"type": "Point", "coordinates": [13.405, 52.52]},
                              "radius_m": 200})
    body = tracked.pings([ping(id="in"), ping(id="out", lat=52.53)]).get_json()
    assert body["accepted"] == 1 and body["dropped"] == {"privacy_zone": 1}


def test_other_subjects_zone_does_not_apply(tenant, tracked):
    other = tenant.post("/v1/subjects", {"external_ref": "other"}).get_json()
    tenant.post("/v1/zones", {"name": "their home", "subject_id": other["subject_id"],
                              "geometry": {"type": "Point", "coordinates": [13.405, 52.52]},
                              "radius_m": 200})
    assert tracked.pings([ping()]).get_json()["accepted"] == 1


def test_outside_window_is_dropped(tenant, tracked):
    now = dt.datetime.now(dt.UTC)
    today = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"][now.weekday()]
    # a window that ended two hours ago today (UTC), when possible; else tomorrow's
    if now.hour >= 3:
        window = {"days": [today], "start": "00:00", "end": f"{now.hour - 2:02d}:00"}
    else:
        window = {"days": [["mon", "tue", "wed", "thu", "fri", "sat", "sun"][
            (now.weekday() + 2) % 7]], "start": "00:00", "end": "12:00"}
    assert tenant.patch("/v1/policy", {"collection_windows": [window]}).status_code == 200
    assert tracked.pings([ping()]).get_json()["dropped"] == {"outside_window": 1}


def test_off_duty_is_dropped_even_when_uploaded_after(tracked):
    assert tracked.post("/v1/device/duty", {"on_duty": False}).status_code == 200
    recorded_off_duty = now_iso()
    tracked.post("/v1/device/duty", {"on_duty": True})
    result = tracked.pings([ping(t=recorded_off_duty, id="late"),
                            ping(t=now_iso(), id="now")]).get_json()
    assert result["dropped"] == {"off_duty": 1} and result["accepted"] == 1


def test_inaccurate_is_dropped(tenant, tracked):
    tenant.patch("/v1/policy", {"min_accuracy_m": 50})
    body = tracked.pings([ping(acc=49, id="1"), ping(acc=51, id="2")]).get_json()
    assert body["accepted"] == 1 and body["dropped"] == {"inaccurate": 1}


def test_blocked_subject_is_dropped(tenant, tracked):
    tenant.patch(f"/v1/subjects/{tracked.subject_id}",
                 {"collection_blocked": True, "blocked_reason": "minor"})
    assert tracked.pings([ping()]).get_json()["dropped"] == {"subject_blocked": 1}


def test_expired_and_future_are_dropped(tenant, make_tracked):
    short = {"key": "short", "title": "Short", "precision_m": 10, "retention_days": 30}
    tracked = make_tracked(tenant, purposes=[short], consent=("short",),
                           consent_at=dt.datetime.now(dt.UTC) - dt.timedelta(days=40))
    old = now_iso(-dt.timedelta(days=31))  # consented then, but past the 30-day window
    future = now_iso(dt.timedelta(minutes=10))
    body = tracked.pings([ping(t=old, id="old"), ping(t=future, id="future")]).get_json()
    assert body["dropped"] == {"expired": 1, "future": 1}


def test_a_late_ping_serves_no_purpose_whose_window_has_closed(tenant, make_tracked, superuser):
    tracked = make_tracked(tenant, consent_at=dt.datetime.now(dt.UTC) - dt.timedelta(days=40))
    late = now_iso(-dt.timedelta(days=31))  # navigation keeps 30 days, analytics 365
    body = tracked.pings([ping(t=late, id="late"), ping(id="live")]).get_json()
    assert body["accepted"] == 2, body
    (_, _, _, p_late, m_late, _, _), (_, _, _, p_live, m_live, _, _) = stored(superuser, tracked)
    assert (m_late, p_late) == (0b10, 500)  # analytics only, at its precision: not 10 m
    assert (m_live, p_live) == (0b11, 10)


def test_a_late_ping_serves_no_purpose_withdrawn_since(tracked, superuser):
    recorded = now_iso(-dt.timedelta(minutes=5))  # navigation was consented then
    resp = tracked.post("/v1/device/consents", {"purpose": "navigation", "status": "withdrawn",
                                                "policy_version": "v1"})
    assert resp.status_code == 201, resp.get_json()
    assert tracked.pings([ping(t=recorded, id="late")]).get_json()["accepted"] == 1
    (_, _, _, precision, mask, _, _), = stored(superuser, tracked)
    assert (mask, precision) == (0b10, 500)


def test_stored_precision_is_the_finest_purpose_allows(tracked, superuser):
    tracked.pings([ping(lat=52.520008, lon=13.404954, alt=37.4)])
    (_, lat, lon, precision, mask, _, alt), = stored(superuser, tracked)
    assert precision == 10  # navigation's, the finest of the two
    assert (lat, lon) != (52.520008, 13.404954)
    assert alt == 40


def _geodesic_m(superuser, lat1, lon1, lat2, lon2):
    return superuser.execute(
        "SELECT ST_Distance(ST_MakePoint(%s, %s)::geography, ST_MakePoint(%s, %s)::geography)",
        (lon1, lat1, lon2, lat2)).fetchone()[0]


@pytest.mark.parametrize("lat", [0.0, 45.0, 60.0])
def test_stored_cells_are_never_finer_than_policy_in_true_metres(tenant, make_tracked,
                                                                  superuser, lat):
    """Two points a little more than one cell apart map to centres >= p apart, east-west
    and north-south; a Web-Mercator grid would give ~p/2 at 60 degrees."""
    tracked = make_tracked(tenant, purposes=[{"key": "coarse", "title": "C", "precision_m": 1000,
                                              "retention_days": 30}], consent=("coarse",))
    dlat = 1001 / 110_574
    dlon = 1001 / (111_320 * math.cos(math.radians(lat)))
    pts = [(lat, 10.0), (lat, 10.0 + dlon), (lat + dlat, 10.0)]
    body = tracked.pings([ping(lat=a, lon=b, id=str(i)) for i, (a, b) in enumerate(pts)])
    assert body.get_json()["accepted"] == 3
    rows = superuser.execute("SELECT client_key, ST_Y(geom), ST_X(geom) FROM pings "
                             "ORDER BY client_key").fetchall()
    (_, y0, x0), (_, y1, x1), (_, y2, x2) = rows
    assert _geodesic_m(superuser, y0, x0, y1, x1) >= 1000
    assert _geodesic_m(superuser, y0, x0, y2, x2) >= 1000
    # and every stored point is within one cell diagonal of the truth
    for (_, y, x), (a, b) in zip(rows, pts, strict=True):
        assert _geodesic_m(superuser, y, x, a, b) <= 1000 * math.sqrt(2) * 1.01


def test_snapping_in_postgis_matches_the_reference(superuser):
    from govern.policy.precision import snap

    for lat, lon, p in [(0.0, 0.0, 10), (59.91, 10.75, 250), (-33.86, 151.2, 1000),
                        (89.99, 179.99, 50), (-89.9, -179.9, 5000), (60.0, 24.9, 100)]:
        y, x = superuser.execute("SELECT ST_Y(g), ST_X(g) FROM govern_snap(%s, %s, %s) g",
                                 (lon, lat, p)).fetchone()
        ry, rx = snap(lat, lon, p)
        assert abs(y - ry) < 1e-9 and abs(x - rx) < 1e-9, (lat, lon, p)


def test_aggregate_purpose_feeds_rollups_once(tracked, superuser):
    batch = [ping(id=str(i)) for i in range(3)]
    tracked.pings(batch)
    tracked.pings(batch)  # a retry adds nothing
    pings, distinct = superuser.execute(
        "SELECT sum(pings), hll_cardinality(hll_union_agg(subjects)) FROM rollups").fetchone()
    assert pings == 3 and distinct == 1


def test_rollup_cells_are_the_stored_positions_cells_with_their_parents(tracked, superuser):
    """Python names each ping's H3 cell from the reference grid before PostgreSQL snaps it,
    and the parents are bit operations in SQL: both must agree with h3 on the stored rows."""
    import h3.api.basic_int as h3

    rng = random.Random(7)
    batch = [ping(lat=52.5 + rng.uniform(-0.2, 0.2), lon=13.4 + rng.uniform(-0.3, 0.3),
                  t=now_iso(-H * rng.uniform(0.1, 20)), id=str(i)) for i in range(300)]
    batch.append(dict(batch[0], lat=48.0, lon=2.0))  # same key and time: a duplicate
    body = tracked.pings(batch).get_json()
    assert body["accepted"] == 300 and body["duplicates"] == 1
    expected = {}
    for t, lat, lon in superuser.execute("SELECT t, ST_Y(geom), ST_X(geom) FROM pings"):
        key = (t.astimezone(dt.UTC).replace(minute=0, second=0, microsecond=0),
               h3.latlng_to_cell(lat, lon, 9))
        expected[key] = expected.get(key, 0) + 1
    rows = superuser.execute("SELECT bucket, cell, r8, r7, r6, r5, pings FROM rollups").fetchall()
    assert {(b, c): n for b, c, *_, n in rows} == expected
    for _, cell, *parents, _ in rows:
        assert parents == [h3.cell_to_parent(cell, r) for r in (8, 7, 6, 5)]


def test_snapping_in_postgis_is_the_reference_bit_for_bit(superuser):
    from govern.policy.precision import Snapper, snap

    rng = random.Random(11)
    points = [(rng.uniform(-180, 180), rng.uniform(-90, 90),
               rng.choice([1, 7.5, 10, 100, 250, 1000, 5000, 100_000])) for _ in range(3000)]
    points += [(180.0, 90.0, 10), (-180.0, -90.0, 10), (179.9999999, 89.9999999, 3)]
    got = superuser.execute(
        "SELECT ST_Y(g), ST_X(g) FROM unnest(%s::float8[], %s::float8[], %s::float8[]) "
        "WITH ORDINALITY AS u(lon, lat, p, n), govern_snap(u.lon, u.lat, u.p) AS g ORDER BY n",
        ([x for x, _, _ in points], [y for _, y, _ in points],
         [float(p) for *_, p in points])).fetchall()
    for (lon, lat, p), row in zip(points, got, strict=True):
        assert row == snap(lat, lon, p) == Snapper(p)(lat, lon), (lat, lon, p)


def test_only_aggregate_purposes_feed_rollups(tenant, make_tracked, superuser):
    from tests.tracking import NAV

    tracked = make_tracked(tenant, purposes=[NAV], consent=("navigation",))
    tracked.pings([ping()])
    assert superuser.execute("SELECT count(*) FROM rollups").fetchone()[0] == 0


def test_batch_over_the_limit_is_413(app, tracked):
    limit = app.config["GOVERN"].max_batch_pings
    resp = tracked.pings([ping(id=str(i)) for i in range(limit + 1)])
    assert resp.status_code == 413
    assert resp.get_json()["error"]["details"] == {"max": limit, "got": limit + 1}


def test_body_without_pings_list_is_422(tracked):
    assert tracked.post("/v1/pings", {"pings": "nope"}).status_code == 422
    assert tracked.post("/v1/pings", [1, 2]).status_code == 422


def test_member_token_cannot_post_pings(tenant, tracked):
    assert tenant.post("/v1/pings", {"pings": [ping()]}).status_code == 403


def test_old_ping_gets_its_day_partition(tenant, make_tracked, superuser):
    tracked = make_tracked(tenant, consent_at=dt.datetime.now(dt.UTC) - dt.timedelta(days=20))
    t = now_iso(-dt.timedelta(days=15))
    assert tracked.pings([ping(t=t)]).get_json()["accepted"] == 1
    day = dt.datetime.fromisoformat(t).strftime("%Y%m%d")
    assert superuser.execute("SELECT to_regclass(%s) IS NOT NULL", (f"pings_{day}",)).fetchone()[0]
    assert superuser.execute("SELECT count(*) FROM ONLY pings").fetchone()[0] == 0


def test_device_last_seen_is_updated(tenant, tracked):
    tracked.pings([ping()])
    device = tenant.get(f"/v1/devices/{tracked.device_id}").get_json()
    assert device["last_seen_at"] is not None


def test_concurrent_batches_over_the_same_cells_all_land(app, tenant, make_tracked, superuser):
    """Phones crossing the same cells in the same hour upsert the same rollup rows; they
    must queue, not deadlock (cells are upserted in key order)."""
    import random
    import threading

    from tests.tracking import ANALYTICS, NAV

    phones = [make_tracked(tenant, purposes=(NAV, ANALYTICS) if i == 0 else (),
                           subject={"external_ref": f"c{i}"}, identifier=f"concurrent-{i}")
              for i in range(4)]
    statuses = []

    def post(tracked, seed):
        rng = random.Random(seed)
        client = app.test_client()
        for b in range(8):
            batch = [ping(id=f"{b}-{i}", lat=52.5 + rng.random() / 50,
                          lon=13.4 + rng.random() / 50) for i in range(100)]
            resp = client.post("/v1/pings", json={"pings": batch},
                               headers={"Authorization": f"Bearer {tracked.device_token}"})
            statuses.append(resp.status_code)

    threads = [threading.Thread(target=post, args=(p, n)) for n, p in enumerate(phones)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert statuses == [200] * 32
    total, = superuser.execute("SELECT sum(pings) FROM rollups").fetchone()
    assert total == 3200
