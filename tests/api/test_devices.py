"""/v1/devices: enrol (token shown once), list with last-seen time, revoke; device token scope."""

import uuid

import pytest


def ident() -> str:
    """A fresh identifier: device_routes is global and outlives each test's tenants."""
    return f"phone-{uuid.uuid4().hex[:12]}"


@pytest.fixture
def sid(tenant):
    return tenant.subject()["subject_id"]


def test_enrol_returns_token_once_and_a_generated_identifier_and_lists_by_subject(tenant, sid):
    device = tenant.device(sid, name="Pixel", platform="android")
    assert device["token"].startswith("gv_")
    assert len(device["identifier"]) >= 4
    assert device["subject_id"] == sid
    assert (device["name"], device["platform"]) == ("Pixel", "android")
    listed = tenant.get("/v1/devices").get_json()["devices"]
    assert [d["device_id"] for d in listed] == [device["device_id"]]
    assert all("token" not in d for d in listed)
    assert "token" not in tenant.get(f"/v1/devices/{device['device_id']}").get_json()
    other = tenant.device(tenant.subject()["subject_id"])
    assert other["identifier"] != device["identifier"]
    listed = tenant.get(f"/v1/devices?subject_id={sid}").get_json()["devices"]
    assert [d["device_id"] for d in listed] == [device["device_id"]]


def test_given_identifier_is_kept(tenant, sid):
    given = ident()
    assert tenant.device(sid, identifier=given)["identifier"] == given


def test_enrol_response_has_the_same_shape_as_get(tenant, sid):
    device = tenant.device(sid)
    got = tenant.get(f"/v1/devices/{device['device_id']}").get_json()
    assert set(device) - {"token"} == set(got)
    assert device["revoked_at"] is None and device["last_seen_at"] is None


def test_invalid_identifier_is_422(tenant, sid):
    for identifier in ("abc", "has space", "x" * 101, "emoji-\u2603-id", 12345):
        resp = tenant.post("/v1/devices", {"subject_id": sid, "identifier": identifier})
        assert resp.status_code == 422, identifier
        assert "identifier" in resp.get_json()["error"]["details"], identifier
    assert tenant.get("/v1/devices").get_json()["devices"] == []


def test_missing_or_unknown_subject(tenant):
    assert tenant.post("/v1/devices", {}).status_code == 422
    resp = tenant.post("/v1/devices", {"subject_id": "8a7f1b52-7c1e-4c1e-9a55-2f0c5b6c1d11"})
    assert resp.status_code == 404


def test_duplicate_identifier_is_409(tenant, sid):
    given = ident()
    tenant.device(sid, identifier=given)
    other = tenant.subject()["subject_id"]
    resp = tenant.post("/v1/devices", {"subject_id": other, "identifier": given})
    assert resp.status_code == 409
    assert resp.get_json()["error"]["code"] == "identifier_taken"


def test_revoke_makes_the_token_401_unroutes_and_hides_it_and_is_audited(tenant, sid,
                                                                         superuser):
    device = tenant.device(sid)  # generated: it has a tenant-less route too
    live = "SELECT count(*) FROM device_routes WHERE identifier = %s AND retired_at IS NULL"
    assert superuser.execute(live, (device["identifier"],)).fetchone()[0] == 1
    assert tenant.get("/v1/device/policy", token=device["token"]).status_code == 200
    resp = tenant.delete(f"/v1/devices/{device['device_id']}")
    assert resp.status_code == 200 and resp.get_json()["revoked_at"] is not None
    assert tenant.get("/v1/device/policy", token=device["token"]).status_code == 401
    assert tenant.get("/v1/devices").get_json()["devices"] == []
    listed = tenant.get("/v1/devices?include_revoked=true").get_json()["devices"]
    assert [d["device_id"] for d in listed] == [device["device_id"]]
    assert superuser.execute(live, (device["identifier"],)).fetchone()[0] == 0
    again = tenant.delete(f"/v1/devices/{device['device_id']}")
    assert again.status_code == 200 and again.get_json()["revoked_at"] == resp.get_json()[
        "revoked_at"]
    assert tenant.audit_actions(superuser)[-2:] == ["device.enrol", "device.revoke"]


def test_device_activity_shows_as_last_seen(tenant, sid):
    device = tenant.device(sid)
    tenant.get("/v1/device/policy", token=device["token"])
    listed = tenant.get("/v1/devices").get_json()["devices"]
    assert listed[0]["last_seen_at"] is not None


def test_device_token_cannot_call_admin_endpoints(tenant, sid):
    token = tenant.device(sid)["token"]
    for resp in (tenant.get("/v1/purposes", token=token),
                 tenant.get("/v1/subjects", token=token),
                 tenant.post("/v1/devices", {"subject_id": sid}, token=token),
                 tenant.get("/v1/policy", token=token),
                 tenant.patch("/v1/policy", {"k_min_subjects": 9}, token=token),
                 tenant.get(f"/v1/subjects/{sid}/consents", token=token),
                 tenant.get("/v1/zones", token=token),
                 tenant.get("/v1/members", token=token)):
        assert resp.status_code == 403
        assert resp.get_json()["error"]["code"] == "forbidden"


def test_member_token_cannot_call_device_endpoints_and_no_token_is_401(tenant, client):
    for token in (tenant.owner_token, tenant.token_for("analyst")):
        assert tenant.get("/v1/device/policy", token=token).status_code == 403
        assert tenant.post("/v1/device/duty", {"on_duty": False}, token=token).status_code == 403
    assert client.get("/v1/device/policy").status_code == 401
    assert client.post("/v1/device/duty", json={"on_duty": False}).status_code == 401


def test_roles(tenant, sid):
    device = tenant.device(sid)
    auditor = tenant.token_for("auditor")
    assert tenant.get("/v1/devices", token=auditor).status_code == 200
    assert tenant.post("/v1/devices", {"subject_id": sid}, token=auditor).status_code == 403
    assert tenant.delete(f"/v1/devices/{device['device_id']}", token=auditor).status_code == 403
    for role in ("analyst", "dispatcher"):
        assert tenant.get("/v1/devices", token=tenant.token_for(role)).status_code == 403
    assert tenant.post("/v1/devices", {"subject_id": sid},
                       token=tenant.token_for("admin")).status_code == 201


def test_other_tenants_device_and_subject_are_404(make_tenant):
    a, b = make_tenant("a"), make_tenant("b")
    b_sid = b.subject()["subject_id"]
    device = b.device(b_sid)
    assert a.get(f"/v1/devices/{device['device_id']}").status_code == 404
    assert a.delete(f"/v1/devices/{device['device_id']}").status_code == 404
    assert a.post("/v1/devices", {"subject_id": b_sid}).status_code == 404
    assert a.get(f"/v1/devices?subject_id={b_sid}").get_json()["devices"] == []
    assert b.get("/v1/device/policy", token=device["token"]).status_code == 200



def test_every_generated_device_enrolled_in_one_transaction_gets_its_route(tenant, sid,
                                                                          sessions, superuser):
    """Seeding (the demo, an import) enrols several devices in one unit of work: each
    generated identifier is claimed after the commit, not only the first."""
    from govern.db import tenant_session
    from govern.domain.subjects import enrol_device

    with tenant_session(sessions, tenant.tenant_id) as s:
        made = [enrol_device(s, tenant.tenant_id, "cli:test", uuid.UUID(sid))[0]
                for _ in range(3)]
    live = ("SELECT identifier FROM device_routes WHERE identifier = ANY(%s) "
            "AND retired_at IS NULL")
    routed = {r[0] for r in superuser.execute(live, ([d.identifier for d in made],))}
    assert routed == {d.identifier for d in made}
