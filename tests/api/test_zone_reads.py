"""Zones hide the area a stored point stands for (its precision cell), at the door, in every
read at once and on disk at the next run; one predicate for all of them; zone limits."""

from __future__ import annotations

import dataclasses
import datetime as dt
import math
import pathlib
import re

from govern.config import Config
from govern.domain.retention import run_all
from govern.domain.trips import build_tenant
from govern.policy.precision import cell
from govern.policy.zones import ZoneLimits
from govern.sql import pings, reads, retention, trips
from govern.sql import zones as zone_sql
from tests.tracking import ping

COARSE = {"key": "navigation", "title": "Navigation", "precision_m": 500, "retention_days": 30,
          "individual_access": True, "reader_roles": ["dispatcher"]}
NAV = {**COARSE, "precision_m": 10}


def track(tracked, t_from, t_to):
    return tracked.tenant.get(
        f"/v1/subjects/{tracked.subject_id}/track", token=tracked.tenant.token_for("dispatcher"),
        query_string={"purpose": "navigation", "from": t_from.isoformat(),
                      "to": t_to.isoformat()}).get_json()["features"]


def circle(tenant, lat, lon, radius_m, subject_id=None):
    body = {"name": "home", "geometry": {"type": "Point", "coordinates": [lon, lat]},
            "radius_m": radius_m}
    if subject_id:
        body["subject_id"] = subject_id
    return tenant.post("/v1/zones", body)


def test_a_zone_smaller_than_the_precision_hides_what_is_stored_in_its_cell(
        tenant, make_tracked, owner, sessions, superuser):
    """A 30 m zone at the corner of a 500 m cell: the stored point (the cell's centre, about
    350 m away) lies outside the zone, yet it stands for the home."""
    tracked = make_tracked(tenant, purposes=[COARSE], consent=("navigation",))
    c = cell(52.52, 13.405, 500)
    home = (c.south + 0.00005, c.west + 0.00005)
    far = (home[0] + 0.05, home[1])
    now = dt.datetime.now(dt.UTC)
    t0 = now - dt.timedelta(hours=2)
    body = tracked.pings([ping(lat=home[0], lon=home[1], id="home", t=t0.isoformat()),
                          ping(lat=far[0], lon=far[1], id="far",
                               t=(t0 + dt.timedelta(minutes=1)).isoformat())]).get_json()
    assert body["accepted"] == 2
    assert len(track(tracked, t0 - dt.timedelta(hours=1), now)) == 2
    assert circle(tenant, home[0], home[1], 30, tracked.subject_id).status_code == 201
    # the old test, the stored point inside the zone, would have kept it visible
    assert superuser.execute(
        "SELECT bool_or(ST_Intersects(z.area, p.geom)) FROM pings p "
        "JOIN zones z ON z.tenant_id = p.tenant_id "  # co-located: Citus plans the join
        "WHERE p.client_key = 'home'").fetchone()[0] is False
    features = track(tracked, t0 - dt.timedelta(hours=1), now)
    assert [f["geometry"]["coordinates"][1] for f in features] == [
        superuser.execute("SELECT ST_Y(geom) FROM pings WHERE client_key = 'far'").fetchone()[0]]
    # at the door: a ping 120 m from home, outside the zone, in the same cell is dropped too
    near = (home[0] + 120 / 111_132, home[1])
    assert (cell(*near, 500).south, cell(*near, 500).west) == (c.south, c.west)
    body = tracked.pings([ping(lat=near[0], lon=near[1], id="near")]).get_json()
    assert body["accepted"] == 0 and body["dropped"] == {"privacy_zone": 1}
    # the next run removes it from disk
    run_all(owner, sessions, now, tenant_id=tenant.tenant_id)
    assert [r[0] for r in superuser.execute("SELECT client_key FROM pings")] == ["far"]


def walk_home_to_work(tracked, start, home, work):
    """20 minutes at home, 30 minutes walking to work, 20 minutes at work."""
    items, t = [], start
    for k in range(20):
        items.append(ping(lat=home[0], lon=home[1] + 0.00001 * (k % 2), id=f"h{k}",
                          t=t.isoformat()))
        t += dt.timedelta(minutes=1)
    for k in range(1, 31):
        f = k / 30
        items.append(ping(lat=home[0] + f * (work[0] - home[0]),
                          lon=home[1] + f * (work[1] - home[1]), id=f"m{k}", t=t.isoformat()))
        t += dt.timedelta(minutes=1)
    for k in range(20):
        items.append(ping(lat=work[0], lon=work[1] + 0.00001 * (k % 2), id=f"w{k}",
                          t=t.isoformat()))
        t += dt.timedelta(minutes=1)
    assert tracked.pings(items).get_json()["accepted"] == len(items)


def test_a_new_zone_hides_a_subjects_trips_and_position_at_once(tenant, make_tracked,
                                                                sessions):
    tracked = make_tracked(tenant, purposes=[NAV], consent=("navigation",))
    home, work = (52.52, 13.405), (52.535, 13.405)
    now = dt.datetime.now(dt.UTC)
    start = now - dt.timedelta(hours=3)
    walk_home_to_work(tracked, start, home, work)
    build_tenant(sessions, tenant.tenant_id)
    dispatcher = tenant.token_for("dispatcher")

    def travel():
        body = tenant.get(f"/v1/subjects/{tracked.subject_id}/travel", token=dispatcher,
                          query_string={"purpose": "navigation", "from": start.isoformat(),
                                        "to": now.isoformat()}).get_json()
        return body["totals"]["trips"]

    def latest():
        features = tenant.get("/v1/positions/latest", token=dispatcher,
                              query_string={"purpose": "navigation"}).get_json()["features"]
        return [f["geometry"]["coordinates"][1] for f in features]

    assert travel() == 1
    assert latest() and abs(latest()[0] - work[0]) < 0.001
    assert circle(tenant, home[0], home[1], 100, tracked.subject_id).status_code == 201
    assert travel() == 0  # the trip starts at home: hidden before any retention run
    assert circle(tenant, work[0], work[1], 100).status_code == 201  # tenant-wide
    # the last position is at work, now in a zone: the latest shown is on the way, outside it
    (shown,) = latest()
    assert shown < work[0] - 100 / 111_132


def test_every_read_path_uses_the_one_zone_predicate():
    """The door, track, positions, a subject's travel, the trips build and the sweep embed
    govern.sql.zones.hidden; no other SQL in govern tests a zone's region itself."""
    uses = {
        "door": pings.STORE_BATCH, "track (all formats)": reads.TRACK,
        "positions": reads.LATEST, "subject travel": reads.SUBJECT_TRIPS,
        "trips build": trips.SUBJECT_PINGS, "sweep pings": retention.SWEEP_ZONE,
        "sweep count": retention.COUNT_IN_ZONE, "sweep travel": retention.SWEEP_ZONE_TRAVEL,
        "sweep travel count": retention.COUNT_TRAVEL_IN_ZONE,
    }
    for name, statement in uses.items():
        assert zone_sql.MARK in str(statement), name
    assert str(reads.SUBJECT_TRIPS).count(zone_sql.MARK) == 2  # origin and destination
    root = pathlib.Path(zone_sql.__file__).parents[1]
    region = re.compile(r"\b(z|zones)\.(area|reach)\b")
    others = [str(p.relative_to(root)) for p in root.rglob("*.py")
              if p.name != "zones.py" or p.parent.name != "sql"
              if region.search(p.read_text())]
    assert others == [], others


def test_zone_limits_are_enforced_and_named(app, config, tenant, monkeypatch, superuser):
    limits = ZoneLimits(max_tenant_wide_zones=2, max_zones_per_subject=1,
                        max_subject_zone_vertices=100, max_tenant_wide_zone_vertices=1000)
    monkeypatch.setitem(app.config, "GOVERN", dataclasses.replace(config, zone_limits=limits))
    sid = tenant.subject()["subject_id"]
    assert circle(tenant, 52.52, 13.405, 100).status_code == 201
    assert circle(tenant, 52.62, 13.405, 100).status_code == 201
    resp = circle(tenant, 52.72, 13.405, 100)
    assert resp.status_code == 409
    error = resp.get_json()["error"]
    assert error["code"] == "zone_limit" and error["details"]["limit"] == "max_tenant_wide_zones"
    assert "max_tenant_wide_zones = 2" in error["message"]
    assert circle(tenant, 52.52, 13.405, 100, sid).status_code == 201
    error = circle(tenant, 52.52, 13.405, 100, sid).get_json()["error"]
    assert error["details"]["limit"] == "max_zones_per_subject"
    # vertices: a polygon whose stored region has more than the subject's 100
    other = tenant.subject()["subject_id"]
    ring = [[13.0 + 0.01 * math.cos(k / 20), 52.0 + 0.01 * math.sin(k / 20)]
            for k in range(126)]
    resp = tenant.post("/v1/zones", {"name": "big", "subject_id": other, "geometry": {
        "type": "Polygon", "coordinates": [ring + [ring[0]]]}})
    assert resp.status_code == 409, resp.get_json()
    details = resp.get_json()["error"]["details"]
    assert details["limit"] == "max_subject_zone_vertices" and details["would_be"] > 100
    assert superuser.execute("SELECT count(*) FROM zones").fetchone()[0] == 3


def test_zone_limits_come_from_the_environment():
    config = Config.from_env({"DATABASE_URL": "postgresql://x/y", "MAX_TENANT_WIDE_ZONES": "7",
                              "MAX_SUBJECT_ZONE_VERTICES": "900"})
    assert config.zone_limits.max_tenant_wide_zones == 7
    assert config.zone_limits.max_subject_zone_vertices == 900
    assert config.zone_limits.max_zones_per_subject == ZoneLimits().max_zones_per_subject


def test_a_zone_states_how_well_it_protects_and_never_its_draw(tenant, superuser):
    zone = circle(tenant, 52.52, 13.405, 200).get_json()
    assert set(zone) == {"zone_id", "name", "subject_id", "geometry", "radius_m", "vertices",
                         "protection", "created_at", "created_by"}
    assert zone["protection"] == {
        "hiding": "offset", "protects": {"kind": "circle", "radius_m": 200},
        "located_no_better_than_m": 19.4, "confidence": 0.95,
        "centre_estimate_off_by_m": 30.0, "hidden_beyond_edge_m": 300.0,
        "hidden_up_to_m": 500.0}
    assert tenant.get(f"/v1/zones/{zone['zone_id']}").get_json() == zone
    # the hidden circle is offset by 50-100 m (0.25 r to 0.5 r), and 300-350 m wide
    offset, radius = superuser.execute(
        "SELECT ST_Distance(ST_Centroid(area)::geography, "
        "ST_SetSRID(ST_MakePoint(13.405, 52.52), 4326)::geography), "
        "sqrt(ST_Area(area::geography) / pi()) FROM zones").fetchone()
    assert 49 <= offset <= 101 and 299 <= radius <= 351
    # two zones around the same place do not share a draw
    other = circle(tenant, 52.52, 13.405, 200).get_json()
    salts = [r[0] for r in superuser.execute("SELECT salt FROM zones")]
    assert len(set(salts)) == 2 and other["protection"] == zone["protection"]
