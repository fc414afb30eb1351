"""/v1/sites: validated like zones, written by owners and admins, read by analysts too;
stops and trip ends follow the sites as they are drawn, redrawn and deleted."""

from __future__ import annotations

import datetime as dt

from govern.domain.trips import build_tenant
from tests.domain.test_trips import ANALYTICS, NAV, SITES, midnight, post, worker_day

SQUARE = {"type": "Polygon", "coordinates": [[[13.330, 52.528], [13.340, 52.528],
                                              [13.340, 52.532], [13.330, 52.532],
                                              [13.330, 52.528]]]}


def test_polygons_and_circles_are_validated_like_zones(tenant):
    resp = tenant.post("/v1/sites", {"name": "Depot", "kind": "depot", "geometry": SQUARE})
    assert resp.status_code == 201, resp.get_json()
    site = resp.get_json()
    assert site["kind"] == "depot" and site["geometry"] == SQUARE and site["radius_m"] is None
    circle = tenant.post("/v1/sites", {"name": "Clinic", "radius_m": 80, "geometry": {
        "type": "Point", "coordinates": [13.39, 52.525]}})
    assert circle.status_code == 201
    open_ring = {"type": "Polygon", "coordinates": [SQUARE["coordinates"][0][:-1]]}
    bad = tenant.post("/v1/sites", {"name": "Bad", "geometry": open_ring})
    assert bad.status_code == 422 and bad.get_json()["error"]["code"] == "invalid_geometry"
    no_radius = tenant.post("/v1/sites", {"name": "Bad", "geometry": {
        "type": "Point", "coordinates": [13.39, 52.525]}})
    assert no_radius.status_code == 422
    assert "radius_m" in no_radius.get_json()["error"]["details"]
    dup = tenant.post("/v1/sites", {"name": "Depot", "geometry": SQUARE})
    assert dup.status_code == 409 and dup.get_json()["error"]["code"] == "duplicate_name"
    names = [s["name"] for s in tenant.get("/v1/sites").get_json()["sites"]]
    assert names == ["Clinic", "Depot"]


def test_owners_and_admins_write_analysts_read(tenant):
    body = {"name": "Depot", "geometry": SQUARE}
    assert tenant.post("/v1/sites", body, token=tenant.token_for("analyst")).status_code == 403
    site = tenant.post("/v1/sites", body, token=tenant.token_for("admin")).get_json()
    path = f"/v1/sites/{site['site_id']}"
    assert tenant.get(path, token=tenant.token_for("analyst")).status_code == 200
    assert tenant.get("/v1/sites", token=tenant.token_for("dispatcher")).status_code == 403
    assert tenant.delete(path, token=tenant.token_for("analyst")).status_code == 403
    renamed = tenant.patch(path, {"name": "Main depot"}, token=tenant.token_for("admin"))
    assert renamed.status_code == 200 and renamed.get_json()["name"] == "Main depot"
    assert tenant.delete(path).status_code == 204
    assert tenant.get(path).status_code == 404


def test_attribution_follows_sites_drawn_after_the_fact(tenant, make_tracked, sessions,
                                                        superuser):
    worker = make_tracked(tenant, purposes=(NAV, ANALYTICS), consent=("navigation",
                                                                      "analytics"),
                          consent_at=dt.datetime.now(dt.UTC) - 40 * dt.timedelta(days=1))
    pings, _, _ = worker_day(midnight(2) + dt.timedelta(hours=7))
    post(worker, pings)
    build_tenant(sessions, tenant.tenant_id)

    def at_depot():
        return superuser.execute(
            "SELECT (SELECT count(*) FROM stops s JOIN sites x USING (tenant_id, site_id) "
            "WHERE x.name = 'Depot'), (SELECT count(*) FROM trips t JOIN sites x "
            "ON x.tenant_id = t.tenant_id AND x.site_id = t.origin_site_id "
            "WHERE x.name = 'Depot')").fetchone()

    assert at_depot() == (0, 0)
    site = tenant.post("/v1/sites", {"name": "Depot", "geometry": SQUARE}).get_json()
    assert at_depot() == (2, 1)  # the day starts and ends there; one trip leaves it
    lat, lon = SITES["clinic"]
    moved = tenant.patch(f"/v1/sites/{site['site_id']}", {
        "geometry": {"type": "Point", "coordinates": [lon, lat]}, "radius_m": 100})
    assert moved.status_code == 200, moved.get_json()
    assert at_depot() == (1, 1)  # now it stands where the clinic is
    tenant.delete(f"/v1/sites/{site['site_id']}")
    assert superuser.execute("SELECT count(*) FROM stops WHERE site_id IS NOT NULL"
                             ).fetchone()[0] == 0
    actions = tenant.audit_actions(superuser)
    assert {"site.create", "site.update", "site.delete"} <= set(actions)
