"""/v1/purposes: declared, validated, unique per tenant, archived (not deleted) once in use."""


def test_create_applies_defaults_and_any_member_reads(tenant):
    created = tenant.purpose("navigation", precision_m=25, retention_days=7)
    assert created["requires_consent"] is True
    assert created["individual_access"] is False and created["aggregate_use"] is False
    assert created["reader_roles"] == [] and created["description"] == ""
    assert created["archived_at"] is None
    analyst = tenant.token_for("analyst")
    listed = tenant.get("/v1/purposes", token=analyst).get_json()["purposes"]
    assert [(p["key"], p["precision_m"], p["retention_days"]) for p in listed] == [
        ("navigation", 25, 7)]
    got = tenant.get(f"/v1/purposes/{created['purpose_id']}", token=analyst)
    assert got.status_code == 200 and got.get_json()["key"] == "navigation"
    fine = tenant.purpose("fine", precision_m=1, retention_days=1)  # the smallest allowed
    assert (fine["precision_m"], fine["retention_days"]) == (1, 1)


def test_invalid_or_missing_fields_are_named_in_422(tenant):
    resp = tenant.post("/v1/purposes", {
        "key": "Bad Key", "title": "", "precision_m": 0, "retention_days": 0,
        "reader_roles": ["boss"], "requires_consent": "maybe"})
    assert resp.status_code == 422
    body = resp.get_json()["error"]
    assert body["code"] == "validation_failed"
    assert {"key", "title", "precision_m", "retention_days", "reader_roles",
            "requires_consent"} <= set(body["details"])
    resp = tenant.post("/v1/purposes", {"key": "navigation"})
    assert resp.status_code == 422
    assert {"title", "precision_m", "retention_days"} <= set(resp.get_json()["error"]["details"])
    for key in ("a", "1abc", "has-dash", "x" * 65, "Upper"):
        resp = tenant.post("/v1/purposes", {"key": key, "title": "t", "precision_m": 1,
                                            "retention_days": 1})
        assert resp.status_code == 422, key
        assert "key" in resp.get_json()["error"]["details"]


def test_duplicate_key_is_409(tenant):
    tenant.purpose("navigation")
    resp = tenant.post("/v1/purposes", {"key": "navigation", "title": "again", "precision_m": 5,
                                        "retention_days": 5})
    assert resp.status_code == 409
    assert resp.get_json()["error"]["code"] == "purpose_exists"


def test_same_key_in_two_tenants_is_fine(make_tenant):
    a, b = make_tenant("a"), make_tenant("b")
    a.purpose("navigation")
    b.purpose("navigation")
    assert len(b.get("/v1/purposes").get_json()["purposes"]) == 1


def test_patch_changes_fields_but_not_the_key(tenant):
    pid = tenant.purpose("navigation")["purpose_id"]
    resp = tenant.patch(f"/v1/purposes/{pid}", {"precision_m": 100, "reader_roles": ["analyst"]})
    assert resp.status_code == 200
    assert resp.get_json()["precision_m"] == 100
    assert resp.get_json()["reader_roles"] == ["analyst"]
    resp = tenant.patch(f"/v1/purposes/{pid}", {"key": "other"})
    assert resp.status_code == 422
    assert "key" in resp.get_json()["error"]["details"]
    resp = tenant.patch(f"/v1/purposes/{pid}", {"retention_days": -1})
    assert resp.status_code == 422


def test_unused_purpose_is_deleted(tenant, superuser):
    pid = tenant.purpose("navigation")["purpose_id"]
    resp = tenant.delete(f"/v1/purposes/{pid}")
    assert resp.status_code == 200 and resp.get_json() == {"outcome": "deleted"}
    assert tenant.get(f"/v1/purposes/{pid}").status_code == 404
    assert superuser.execute("SELECT count(*) FROM purposes WHERE purpose_id = %s",
                             (pid,)).fetchone()[0] == 0


def test_purpose_named_by_a_consent_is_archived_not_deleted(tenant, superuser):
    pid = tenant.purpose("navigation")["purpose_id"]
    subject = tenant.subject()
    tenant.consent(subject["subject_id"], "navigation")
    resp = tenant.delete(f"/v1/purposes/{pid}")
    assert resp.get_json() == {"outcome": "archived"}
    got = tenant.get(f"/v1/purposes/{pid}").get_json()
    assert got["archived_at"] is not None
    assert tenant.get("/v1/purposes").get_json()["purposes"] == []
    archived = tenant.get("/v1/purposes?include_archived=true").get_json()["purposes"]
    assert [p["key"] for p in archived] == ["navigation"]
    # history still names it
    events = tenant.get(f"/v1/subjects/{subject['subject_id']}/consents").get_json()["events"]
    assert [e["purpose"] for e in events] == ["navigation"]
    assert tenant.audit_actions(superuser)[-1] == "purpose.archive"


def test_archived_purpose_cannot_change_be_consented_or_reused(tenant):
    pid = tenant.purpose("navigation")["purpose_id"]
    sid = tenant.subject()["subject_id"]
    tenant.consent(sid, "navigation")
    tenant.delete(f"/v1/purposes/{pid}")
    assert tenant.patch(f"/v1/purposes/{pid}", {"title": "x"}).status_code == 409
    assert tenant.delete(f"/v1/purposes/{pid}").get_json() == {"outcome": "archived"}
    resp = tenant.post(f"/v1/subjects/{sid}/consents", {
        "purpose": "navigation", "status": "granted", "policy_version": "v1",
        "evidence": {"form": "f"}})
    assert resp.status_code == 422
    assert "purpose" in resp.get_json()["error"]["details"]
    resp = tenant.post("/v1/purposes", {"key": "navigation", "title": "t", "precision_m": 1,
                                        "retention_days": 1})
    assert resp.status_code == 409


def test_only_owner_and_admin_write(tenant):
    pid = tenant.purpose("navigation")["purpose_id"]
    body = {"key": "other", "title": "t", "precision_m": 1, "retention_days": 1}
    for role in ("analyst", "dispatcher", "auditor"):
        token = tenant.token_for(role)
        assert tenant.post("/v1/purposes", body, token=token).status_code == 403
        assert tenant.patch(f"/v1/purposes/{pid}", {"title": "x"}, token=token).status_code == 403
        assert tenant.delete(f"/v1/purposes/{pid}", token=token).status_code == 403
    admin = tenant.token_for("admin")
    assert tenant.post("/v1/purposes", body, token=admin).status_code == 201
    assert tenant.client.get("/v1/purposes").status_code == 401


def test_other_tenants_purpose_is_404(make_tenant):
    a, b = make_tenant("a"), make_tenant("b")
    pid = b.purpose("navigation")["purpose_id"]
    for resp in (a.get(f"/v1/purposes/{pid}"), a.patch(f"/v1/purposes/{pid}", {"title": "x"}),
                 a.delete(f"/v1/purposes/{pid}")):
        assert resp.status_code == 404
    assert a.get("/v1/purposes").get_json()["purposes"] == []
    assert b.get(f"/v1/purposes/{pid}").get_json()["title"] == "Navigation"


def test_purpose_changes_are_audited(tenant, superuser):
    pid = tenant.purpose("navigation")["purpose_id"]
    tenant.patch(f"/v1/purposes/{pid}", {"precision_m": 50})
    tenant.patch(f"/v1/purposes/{pid}", {"precision_m": 50})  # no change, no row
    tenant.delete(f"/v1/purposes/{pid}")
    assert tenant.audit_actions(superuser)[1:] == [
        "purpose.create", "purpose.update", "purpose.delete"]
    details = superuser.execute(
        "SELECT details FROM audit_log WHERE tenant_id = %s AND action = 'purpose.update'",
        (tenant.tenant_id,)).fetchone()[0]
    assert details["changed"]["precision_m"] == {"from": 10, "to": 50}

