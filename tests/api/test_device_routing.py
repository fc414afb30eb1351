"""OsmAnd identifiers are scoped to a tenant: no cross-tenant oracle, no cross-tenant
pings, and a revoked identifier routes nowhere."""

import datetime as dt

from tests.tracking import ANALYTICS, NAV


def _params(identifier):
    t = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=1)
    return {"id": identifier, "lat": "52.52", "lon": "13.40", "timestamp": str(int(t.timestamp()))}


def _tenants_with_pings(superuser):
    return {r[0] for r in superuser.execute("SELECT DISTINCT tenant_id FROM pings")}


def test_enrolling_an_identifier_another_tenant_uses_reveals_nothing(make_tenant, make_tracked):
    b = make_tracked(make_tenant("b"), identifier="4711-phone")
    a = make_tenant("a")
    subject = a.subject()
    resp = a.post("/v1/devices", {"subject_id": subject["subject_id"], "identifier": "4711-phone"})
    assert resp.status_code == 201, resp.get_json()
    assert resp.get_json()["osmand_path"] == f"/v1/ingest/osmand/{a.tenant_id}"
    # within one tenant an identifier stays unique
    again = b.tenant.post("/v1/devices", {"subject_id": b.subject_id, "identifier": "4711-phone"})
    assert again.status_code == 409 and again.get_json()["error"]["code"] == "identifier_taken"


def test_each_tenant_url_routes_to_its_own_device(make_tenant, make_tracked, client, superuser):
    a = make_tracked(make_tenant("a"), identifier="truck-0042")
    b = make_tracked(make_tenant("b"), identifier="truck-0042")
    for tracked in (a, b):
        resp = client.get(f"/v1/ingest/osmand/{tracked.tenant.tenant_id}",
                          query_string=_params("truck-0042"))
        assert resp.status_code == 200
    rows = superuser.execute("SELECT tenant_id, device_id::text FROM pings").fetchall()
    assert sorted(rows) == sorted([(a.tenant.tenant_id, a.device_id),
                                   (b.tenant.tenant_id, b.device_id)])
    # the POST forms too
    resp = client.post(f"/v1/ingest/osmand/{a.tenant.tenant_id}", data=_params("truck-0042"))
    assert resp.status_code == 200


def test_a_revoked_identifier_routes_no_ping_to_anyone(make_tenant, make_tracked, client,
                                                     superuser):
    b = make_tracked(make_tenant("b"), identifier="truck-0042")
    assert b.tenant.delete(f"/v1/devices/{b.device_id}").status_code == 200
    a = make_tenant("a")
    for spec in (NAV, ANALYTICS):
        a.post("/v1/purposes", spec)
    subject = a.subject()
    a.consent(subject["subject_id"], "navigation",
              at=dt.datetime.now(dt.UTC) - dt.timedelta(hours=1))
    assert a.post("/v1/devices", {"subject_id": subject["subject_id"],
                                  "identifier": "truck-0042"}).status_code == 201
    # B's phone keeps posting: to the old tenant-less URL and to B's own URL
    assert client.get("/v1/ingest/osmand", query_string=_params("truck-0042")).status_code \
        == 404
    assert client.get(f"/v1/ingest/osmand/{b.tenant.tenant_id}",
                      query_string=_params("truck-0042")).status_code == 404
    assert _tenants_with_pings(superuser) == set()
    # and B cannot hand the identifier to another of its devices
    again = b.tenant.post("/v1/devices", {"subject_id": b.subject_id, "identifier": "truck-0042"})
    assert again.status_code == 409


def test_a_device_of_another_tenant_is_not_found_under_this_tenants_url(make_tenant,
                                                                        make_tracked, client):
    a = make_tracked(make_tenant("a"), identifier="dev-aaaa")
    b = make_tenant("b")
    assert client.get(f"/v1/ingest/osmand/{b.tenant_id}",
                      query_string=_params("dev-aaaa")).status_code == 404
    assert client.get(f"/v1/ingest/osmand/{a.tenant.tenant_id}",
                      query_string=_params("dev-aaaa")).status_code == 200


def test_tenant_less_url_serves_only_generated_identifiers(make_tenant, make_tracked, client,
                                                           superuser):
    generated = make_tracked(make_tenant("a"))
    chosen = make_tracked(make_tenant("b"), identifier="dev-bbbb")
    assert client.get("/v1/ingest/osmand",
                      query_string=_params(generated.identifier)).status_code == 200
    assert client.get("/v1/ingest/osmand", query_string=_params("dev-bbbb")).status_code == 404
    assert _tenants_with_pings(superuser) == {generated.tenant.tenant_id}
    # revoked: the global route is retired, not freed
    generated.tenant.delete(f"/v1/devices/{generated.device_id}")
    assert client.get("/v1/ingest/osmand",
                      query_string=_params(generated.identifier)).status_code == 404
    retired, = superuser.execute("SELECT retired_at FROM device_routes WHERE identifier = %s",
                                 (generated.identifier,)).fetchone()
    assert retired is not None
    assert chosen.identifier == "dev-bbbb"


def test_claiming_a_route_needs_a_live_device_of_ones_own_tenant(make_tenant, make_tracked,
                                                                 sessions, superuser):
    from sqlalchemy import text

    from govern.db import tenant_session

    a = make_tracked(make_tenant("a"), identifier="dev-aaaa")
    b = make_tenant("b")
    with tenant_session(sessions, b.tenant_id) as s:
        s.execute(text("SELECT set_config('govern.tenant_id', :t, true)"),
                  {"t": str(b.tenant_id)})
        claimed = s.scalar(text("SELECT govern_claim_device_route('dev-aaaa', :d)"),
                           {"d": a.device_id})
    assert claimed is False
    assert superuser.execute("SELECT count(*) FROM device_routes WHERE identifier = 'dev-aaaa'"
                             ).fetchone()[0] == 0
