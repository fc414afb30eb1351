"""Individual reads: a purpose that allows it, a role it names, its precision, audited."""

import datetime as dt
import math

import pytest

from tests.tracking import now_iso, ping

NAV = {"key": "navigation", "title": "Nav", "precision_m": 10, "retention_days": 7,
       "individual_access": True, "reader_roles": ["dispatcher"]}
DISPATCH = {"key": "dispatch", "title": "Dispatch", "precision_m": 1000, "retention_days": 7,
            "individual_access": True, "reader_roles": ["dispatcher", "admin"]}
ANALYTICS = {"key": "analytics", "title": "Analytics", "precision_m": 500,
             "retention_days": 30, "aggregate_use": True}


@pytest.fixture
def tracked(tenant, make_tracked):
    return make_tracked(tenant, purposes=(NAV, DISPATCH, ANALYTICS),
                        consent=("navigation", "dispatch", "analytics"))


def get_track(tracked, purpose, role="dispatcher", **params):
    return tracked.tenant.get(f"/v1/subjects/{tracked.subject_id}/track",
                              token=tracked.tenant.token_for(role),
                              query_string={"purpose": purpose, **params})


def test_track_is_time_ordered_geojson(tracked):
    tracked.pings([ping(id="2", t=now_iso(-dt.timedelta(minutes=1))),
                   ping(id="1", t=now_iso(-dt.timedelta(minutes=2)), lat=52.53)])
    body = get_track(tracked, "navigation").get_json()
    assert body["type"] == "FeatureCollection"
    times = [f["properties"]["t"] for f in body["features"]]
    assert times == sorted(times) and len(times) == 2
    assert all(f["properties"]["precision_m"] == 10 for f in body["features"])


def test_analyst_cannot_read_a_track(tracked):
    tracked.pings([ping()])
    resp = get_track(tracked, "navigation", role="analyst")
    assert resp.status_code == 403


def test_aggregate_only_purpose_refuses_individual_reads(tracked):
    resp = get_track(tracked, "analytics", role="owner")
    assert resp.status_code == 403 and resp.get_json()["error"]["code"] == "aggregate_only"


def test_unknown_purpose_is_422_and_other_tenant_subject_404(tracked, make_tenant):
    assert get_track(tracked, "nope").status_code == 422
    other = make_tenant("other")
    resp = other.get(f"/v1/subjects/{tracked.subject_id}/track",
                     query_string={"purpose": "navigation"})
    assert resp.status_code in (404, 422)


@pytest.mark.parametrize("lat", [0.0, 45.0, 60.0])
def test_returned_points_are_no_finer_than_the_purpose_in_true_metres(tracked, superuser, lat):
    """Read under dispatch (1000 m) though stored at navigation's 10 m: every returned
    point is the centre of a cell at least 1 km wide and tall."""
    from govern.policy.precision import cell

    dlon = 1001 / (111_320 * math.cos(math.radians(lat)))
    pts = [(lat + 0.0003, 10.0003), (lat + 0.0003, 10.0003 + dlon)]
    tracked.pings([ping(lat=a, lon=b, id=str(i)) for i, (a, b) in enumerate(pts)])
    features = get_track(tracked, "dispatch").get_json()["features"]
    assert len(features) == 2
    coords = [f["geometry"]["coordinates"] for f in features]
    for lon, lat_ in coords:
        c = cell(lat_, lon, 1000)
        assert (c.lat, c.lon) == pytest.approx((lat_, lon), abs=1e-9)
    (x0, y0), (x1, y1) = coords
    d = superuser.execute("SELECT ST_Distance(ST_MakePoint(%s,%s)::geography, "
                          "ST_MakePoint(%s,%s)::geography)", (x0, y0, x1, y1)).fetchone()[0]
    assert d >= 1000
    assert all(f["properties"]["precision_m"] == 1000 for f in features)


def test_pages_with_a_cursor(tracked):
    tracked.pings([ping(id=str(i), t=now_iso(-dt.timedelta(minutes=30 - i)))
                   for i in range(5)])
    first = get_track(tracked, "navigation", limit=2).get_json()
    cursor = first["properties"]["next_cursor"]
    assert len(first["features"]) == 2 and cursor
    second = get_track(tracked, "navigation", limit=2, cursor=cursor).get_json()
    third = get_track(tracked, "navigation", limit=2,
                      cursor=second["properties"]["next_cursor"]).get_json()
    times = [f["properties"]["t"] for page in (first, second, third) for f in page["features"]]
    assert len(times) == 5 and times == sorted(times) and len(set(times)) == 5
    assert third["properties"]["next_cursor"] is None
    assert get_track(tracked, "navigation", cursor="garbage!").status_code == 422


def test_time_range_limits(tracked):
    now = dt.datetime.now(dt.UTC)
    too_long = {"from": (now - dt.timedelta(days=40)).isoformat(), "to": now.isoformat()}
    assert get_track(tracked, "navigation", **too_long).status_code == 422
    backwards = {"from": now.isoformat(), "to": (now - dt.timedelta(hours=1)).isoformat()}
    assert get_track(tracked, "navigation", **backwards).status_code == 422


def test_gpx(tracked):
    tracked.pings([ping()])
    resp = tracked.tenant.get(f"/v1/subjects/{tracked.subject_id}/track.gpx",
                              token=tracked.tenant.token_for("dispatcher"),
                              query_string={"purpose": "navigation"})
    assert resp.status_code == 200 and resp.mimetype == "application/gpx+xml"
    text = resp.get_data(as_text=True)
    assert text.count("<trkpt ") == 1 and 'version="1.1"' in text


def test_latest_positions_for_dispatch(tenant, tracked, make_tracked):
    tracked.pings([ping(id="old", t=now_iso(-dt.timedelta(minutes=9))),
                   ping(id="new", lat=52.6, t=now_iso(-dt.timedelta(minutes=1)))])
    resp = tenant.get("/v1/positions/latest", token=tenant.token_for("dispatcher"),
                      query_string={"purpose": "dispatch"})
    features = resp.get_json()["features"]
    assert len(features) == 1
    assert features[0]["properties"]["precision_m"] == 1000
    assert features[0]["geometry"]["coordinates"][1] == pytest.approx(52.6, abs=0.01)
    tracked.post("/v1/device/consents", {"purpose": "dispatch", "status": "withdrawn",
                                         "policy_version": "v1"})
    again = tenant.get("/v1/positions/latest", token=tenant.token_for("dispatcher"),
                       query_string={"purpose": "dispatch"})
    assert again.get_json()["features"] == []


def test_every_individual_read_is_audited(tracked, superuser):
    tracked.pings([ping()])
    get_track(tracked, "navigation")
    tracked.tenant.get("/v1/positions/latest", token=tracked.tenant.token_for("dispatcher"),
                       query_string={"purpose": "navigation"})
    rows = superuser.execute(
        "SELECT action, actor_id, subject_id, details->>'purpose', details->>'returned' "
        "FROM audit_log WHERE action LIKE 'read.%' ORDER BY seq").fetchall()
    assert [(r[0], r[3], r[4]) for r in rows] == [("read.track", "navigation", "1"),
                                                  ("read.positions", "navigation", "1")]
    assert rows[0][1].startswith("member:") and str(rows[0][2]) == tracked.subject_id


def test_blocked_subject_is_not_read(tenant, tracked):
    tracked.pings([ping()])
    tenant.patch(f"/v1/subjects/{tracked.subject_id}",
                 {"collection_blocked": True, "blocked_reason": "minor"})
    assert get_track(tracked, "navigation").get_json()["features"] == []


def test_a_zone_drawn_later_hides_what_was_stored_inside_it(tenant, tracked):
    tracked.pings([ping(id="home", lat=52.52, lon=13.405), ping(id="away", lat=52.60)])
    assert len(get_track(tracked, "navigation").get_json()["features"]) == 2
    tenant.post("/v1/zones", {"name": "home", "subject_id": tracked.subject_id,
                              "geometry": {"type": "Point", "coordinates": [13.405, 52.52]},
                              "radius_m": 300})
    features = get_track(tracked, "navigation").get_json()["features"]
    assert len(features) == 1 and features[0]["geometry"]["coordinates"][1] > 52.59
