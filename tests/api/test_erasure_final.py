"""Erasure: no personal value survives in the audit log, and an erased subject stays erased."""

import json

import pytest

from tests.tracking import ping

PERSONAL = ("jane.doe-4711", "Jane Doe", "J. Doe", "under 16 per parent")


@pytest.fixture
def erased(tenant, make_tracked, superuser):
    tracked = make_tracked(tenant, subject={"external_ref": "jane.doe-4711",
                                            "display_name": "Jane Doe"})
    sid = tracked.subject_id
    assert tenant.patch(f"/v1/subjects/{sid}", {"display_name": "J. Doe"}).status_code == 200
    assert tenant.patch(f"/v1/subjects/{sid}", {
        "collection_blocked": True, "blocked_reason": "under 16 per parent"}).status_code == 200
    assert tenant.patch(f"/v1/subjects/{sid}", {"collection_blocked": False}).status_code == 200
    tracked.pings([ping(id="1")])
    req = tenant.post("/v1/requests", {"subject_id": sid, "kind": "erasure"}).get_json()
    assert tenant.post(f"/v1/requests/{req['request_id']}/erase", {}).status_code == 200
    return tracked


def test_audit_log_keeps_field_names_not_values_and_still_verifies(tenant, erased, superuser):
    rows = superuser.execute("SELECT action, details FROM audit_log WHERE tenant_id = %s "
                             "ORDER BY seq", (tenant.tenant_id,)).fetchall()
    text = json.dumps([r[1] for r in rows])
    for value in PERSONAL:
        assert value not in text, value
    updates = [d for a, d in rows if a == "subject.update"]
    assert updates[0] == {"changed": ["display_name"]}
    assert updates[1] == {"changed": ["collection_blocked", "blocked_reason"]}
    created = next(d for a, d in rows if a == "subject.create")
    assert "external_ref" in created["fields"]
    verify = tenant.get("/v1/audit/verify", token=tenant.token_for("auditor")).get_json()
    assert verify["ok"] is True, verify


def test_an_erased_subject_cannot_be_revived(tenant, erased, superuser):
    sid = erased.subject_id
    attempts = {
        "unblock": tenant.patch(f"/v1/subjects/{sid}", {"collection_blocked": False}),
        "rename": tenant.patch(f"/v1/subjects/{sid}", {"display_name": "Jane"}),
        "device": tenant.post("/v1/devices", {"subject_id": sid}),
        "consent": tenant.post(f"/v1/subjects/{sid}/consents", {
            "purpose": "navigation", "status": "granted", "policy_version": "v1",
            "evidence": {"form": "paper-2"}}),
    }
    for what, resp in attempts.items():
        assert resp.status_code == 409, (what, resp.get_json())
        assert resp.get_json()["error"]["code"] == "subject_erased", what
    blocked, = superuser.execute("SELECT collection_blocked FROM subjects WHERE subject_id = %s",
                                 (sid,)).fetchone()
    assert blocked is True
    assert superuser.execute("SELECT count(*) FROM devices").fetchone()[0] == 0
    # erasing again says so: nothing new can have been collected
    req = tenant.post("/v1/requests", {"subject_id": sid, "kind": "erasure"}).get_json()
    again = tenant.post(f"/v1/requests/{req['request_id']}/erase", {})
    assert again.status_code == 409 and again.get_json()["error"]["code"] == "already_erased"
