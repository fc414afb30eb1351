"""Existing apps post unchanged: OwnTracks, Traccar Client (OsmAnd), Transistor, Overland."""

import base64
import datetime as dt

import pytest

H = dt.timedelta(hours=1)


@pytest.fixture
def tracked(tenant, make_tracked):
    # a generated identifier: the only kind the tenant-less OsmAnd URL still routes
    return make_tracked(tenant)


def count(superuser):
    return superuser.execute("SELECT count(*) FROM pings").fetchone()[0]


def recent(minutes=2) -> dt.datetime:
    return dt.datetime.now(dt.UTC) - dt.timedelta(minutes=minutes)


def basic(token, user="anyone"):
    raw = base64.b64encode(f"{user}:{token}".encode()).decode()
    return {"Authorization": f"Basic {raw}"}


def test_owntracks_location_with_basic_auth(tracked, client, superuser):
    # OwnTracks Booklet, JSON: _type=location, tst epoch seconds, vel km/h
    msg = {"_type": "location", "tid": "jd", "lat": 52.5201, "lon": 13.4049, "acc": 12,
           "alt": 48, "vel": 36, "cog": 270, "batt": 81, "tst": int(recent().timestamp()),
           "conn": "m", "t": "u"}
    resp = client.post("/v1/ingest/owntracks", json=msg, headers=basic(tracked.device_token))
    assert resp.status_code == 200 and resp.get_json() == []
    assert count(superuser) == 1
    speed, battery = superuser.execute("SELECT speed, battery FROM pings").fetchone()
    assert speed == pytest.approx(10.0) and battery == 81


def test_owntracks_other_message_types_are_acknowledged_and_ignored(tracked, client, superuser):
    msgs = [{"_type": "transition", "event": "enter", "tst": 1, "wtst": 1, "lat": 1, "lon": 1},
            {"_type": "lwt", "tst": 1}, {"_type": "waypoints", "waypoints": []}]
    resp = client.post("/v1/ingest/owntracks", json=msgs, headers=basic(tracked.device_token))
    assert resp.status_code == 200 and resp.get_json() == []
    assert count(superuser) == 0


def test_owntracks_retry_is_deduplicated_by_time(tracked, client, superuser):
    msg = {"_type": "location", "lat": 52.5, "lon": 13.4, "tst": int(recent().timestamp())}
    for _ in range(2):
        client.post("/v1/ingest/owntracks", json=msg, headers=basic(tracked.device_token))
    assert count(superuser) == 1


def test_owntracks_without_credentials_is_401(tracked, client):
    msg = {"_type": "location", "lat": 52.5, "lon": 13.4, "tst": int(recent().timestamp())}
    assert client.post("/v1/ingest/owntracks", json=msg).status_code == 401
    assert client.post("/v1/ingest/owntracks", json=msg,
                       headers=basic("wrong")).status_code == 401


@pytest.mark.parametrize("stamp", [
    lambda t: str(int(t.timestamp())),
    lambda t: str(int(t.timestamp() * 1000)),
    lambda t: t.isoformat(),
])
def test_osmand_query_parameters(tracked, client, superuser, stamp):
    # Traccar Client: GET /?id=..&lat=..&lon=..&timestamp=..&speed=<knots>&bearing=..
    t = recent()
    resp = client.get("/v1/ingest/osmand", query_string={
        "id": tracked.identifier, "lat": "52.5201", "lon": "13.4049", "timestamp": stamp(t),
        "speed": "10", "bearing": "90", "altitude": "40", "accuracy": "8", "batt": "77"})
    assert resp.status_code == 200, resp.get_data(as_text=True)
    speed, = superuser.execute("SELECT speed FROM pings").fetchone()
    assert speed == pytest.approx(5.1, abs=0.05)  # 10 knots in m/s, stored to 0.1


def test_osmand_form_post(tracked, client, superuser):
    resp = client.post("/v1/ingest/osmand", data={
        "id": tracked.identifier, "lat": "52.52", "lon": "13.40",
        "timestamp": str(int(recent().timestamp()))})
    assert resp.status_code == 200
    assert count(superuser) == 1


def test_osmand_json_variant(tracked, client, superuser):
    body = {"device_id": tracked.identifier, "location": {
        "timestamp": recent().isoformat(), "uuid": "7b1d-1",
        "coords": {"latitude": 52.52, "longitude": 13.40, "accuracy": 5, "speed": 3.2,
                   "heading": 180, "altitude": 35},
        "is_moving": True, "odometer": 1200, "battery": {"level": 0.55, "is_charging": False},
        "activity": {"type": "walking"}}}
    resp = client.post("/v1/ingest/osmand", json=body)
    assert resp.status_code == 200
    battery, activity = superuser.execute("SELECT battery, activity FROM pings").fetchone()
    assert battery == 55 and activity == "walking"


def test_osmand_unknown_or_revoked_identifier_is_404(tenant, tracked, client, superuser):
    params = {"id": "nobody-here", "lat": "1", "lon": "1",
              "timestamp": str(int(recent().timestamp()))}
    assert client.get("/v1/ingest/osmand", query_string=params).status_code == 404
    tenant.delete(f"/v1/devices/{tracked.device_id}")
    params["id"] = tracked.identifier
    assert client.get("/v1/ingest/osmand", query_string=params).status_code == 404
    assert count(superuser) == 0


def test_osmand_identifier_routes_to_its_own_tenant(make_tenant, make_tracked, client,
                                                    superuser):
    a = make_tracked(make_tenant("a"), identifier="dev-aaaa")
    b = make_tracked(make_tenant("b"), identifier="dev-bbbb")
    client.get(f"/v1/ingest/osmand/{b.tenant.tenant_id}", query_string={
        "id": "dev-bbbb", "lat": "1", "lon": "1", "timestamp": str(int(recent().timestamp()))})
    tenants = superuser.execute("SELECT DISTINCT tenant_id::text FROM pings").fetchall()
    assert tenants == [(str(b.tenant.tenant_id),)]
    assert a.tenant.tenant_id != b.tenant.tenant_id


def _transistor_location(uuid, minutes=2):
    # transistorsoft background-geolocation Location schema
    return {"uuid": uuid, "timestamp": recent(minutes).isoformat().replace("+00:00", "Z"),
            "is_moving": True, "odometer": 1234.5, "event": "motionchange",
            "coords": {"latitude": 52.5201, "longitude": 13.4049, "accuracy": 9.2,
                       "speed": 4.1, "heading": 112.5, "altitude": 41.0,
                       "altitude_accuracy": 3, "speed_accuracy": -1, "heading_accuracy": -1},
            "activity": {"type": "on_foot", "confidence": 80},
            "battery": {"level": 0.62, "is_charging": False}, "extras": {}}


def test_transistor_single_and_list(tracked, client, superuser):
    auth = {"Authorization": f"Bearer {tracked.device_token}"}
    first = _transistor_location("u1")
    one = client.post("/v1/ingest/transistor", json={"location": first}, headers=auth)
    assert one.status_code == 200 and one.get_json()["accepted"] == 1
    many = client.post("/v1/ingest/transistor", headers=auth, json={
        "location": [_transistor_location("u2", 3), first]})  # the app retries u1 as it was
    assert many.get_json()["accepted"] == 1 and many.get_json()["duplicates"] == 1
    assert count(superuser) == 2


def test_overland_features(tracked, client, superuser):
    # Overland-iOS README: {"locations": [GeoJSON Feature]}
    feature = {"type": "Feature", "geometry": {"type": "Point", "coordinates": [13.4049, 52.52]},
               "properties": {"timestamp": recent().isoformat(), "altitude": 40, "speed": 1.2,
                              "horizontal_accuracy": 10, "vertical_accuracy": 4,
                              "motion": ["walking"], "battery_state": "unplugged",
                              "battery_level": 0.8, "wifi": ""}}
    resp = client.post("/v1/ingest/overland", json={"locations": [feature]},
                       headers={"Authorization": f"Bearer {tracked.device_token}"})
    assert resp.status_code == 200 and resp.get_json() == {"result": "ok"}
    assert count(superuser) == 1


def test_overland_body_without_locations_is_422(tracked, client):
    resp = client.post("/v1/ingest/overland", json={"nope": []},
                       headers={"Authorization": f"Bearer {tracked.device_token}"})
    assert resp.status_code == 422
    assert resp.get_json()["error"]["code"] == "validation_failed"
