"""The consent ledger: append-only, evidence for admin entries, state derived at any instant."""

import datetime as dt

import psycopg
import pytest

from govern.config import libpq_url
from govern.db import tenant_scope_sql

NOW = dt.datetime.now(dt.UTC).replace(microsecond=0)
US = dt.timedelta(microseconds=1)


@pytest.fixture
def subject(tenant):
    tenant.purpose("navigation")
    return tenant.subject()["subject_id"]


def consent_body(**values):
    return {"purpose": "navigation", "status": "granted", "policy_version": "v1",
            "evidence": {"form": "paper-1"}, **values}


def state(tenant, sid, at=None, token=None):
    query = {"at": at.isoformat()} if at is not None else {}
    resp = tenant.get(f"/v1/subjects/{sid}/consent-state", query_string=query, token=token)
    assert resp.status_code == 200, resp.get_json()
    return {p["purpose"]: p for p in resp.get_json()["purposes"]}


def test_admin_consent_is_recorded_and_audited_with_its_evidence_and_actor(tenant, subject,
                                                                          superuser):
    event = tenant.consent(subject, "navigation", evidence={"form": "F-7", "signed": True})
    assert event["status"] == "granted" and event["source"] == "admin"
    assert event["actor_id"] == f"member:{tenant.owner_member_id}"
    assert event["evidence"] == {"form": "F-7", "signed": True}
    assert event["policy_version"] == "v1"
    at = dt.datetime.fromisoformat(event["at"])
    assert abs(at - dt.datetime.now(dt.UTC)) < dt.timedelta(seconds=30)
    tenant.consent(subject, "navigation", "withdrawn")
    rows = superuser.execute(
        "SELECT action, details->>'source', details->>'purpose' FROM audit_log "
        "WHERE tenant_id = %s AND action LIKE 'consent.%%' ORDER BY seq",
        (tenant.tenant_id,)).fetchall()
    assert rows == [("consent.granted", "admin", "navigation"),
                    ("consent.withdrawn", "admin", "navigation")]


def test_admin_consent_needs_a_non_empty_evidence_object(tenant, subject):
    for evidence in (None, {}, "signed", ["x"]):
        body = consent_body()
        if evidence is None:
            del body["evidence"]
        else:
            body["evidence"] = evidence
        resp = tenant.post(f"/v1/subjects/{subject}/consents", body)
        assert resp.status_code == 422, evidence
        assert "evidence" in resp.get_json()["error"]["details"], evidence
    assert tenant.get(f"/v1/subjects/{subject}/consents").get_json()["events"] == []


def test_invalid_fields_and_unknown_purpose_are_422(tenant, subject):
    resp = tenant.post(f"/v1/subjects/{subject}/consents",
                       {"purpose": "", "status": "maybe", "evidence": {"a": 1}})
    assert resp.status_code == 422
    assert {"purpose", "status", "policy_version"} <= set(resp.get_json()["error"]["details"])
    resp = tenant.post(f"/v1/subjects/{subject}/consents", consent_body(purpose="nope"))
    assert resp.status_code == 422
    assert "purpose" in resp.get_json()["error"]["details"]


def test_at_in_the_future_or_without_offset_is_422(tenant, subject):
    future = (dt.datetime.now(dt.UTC) + dt.timedelta(minutes=10)).isoformat()
    for at in (future, "2024-01-01T10:00:00"):
        resp = tenant.post(f"/v1/subjects/{subject}/consents", consent_body(at=at))
        assert resp.status_code == 422, at
        assert "at" in resp.get_json()["error"]["details"], at


def test_admin_may_backdate_a_year_but_not_more(tenant, subject):
    old = dt.datetime.now(dt.UTC) - dt.timedelta(days=367)
    resp = tenant.post(f"/v1/subjects/{subject}/consents", consent_body(at=old.isoformat()))
    assert resp.status_code == 422 and "at" in resp.get_json()["error"]["details"]
    ok = dt.datetime.now(dt.UTC) - dt.timedelta(days=300)
    assert tenant.post(f"/v1/subjects/{subject}/consents",
                       consent_body(at=ok.isoformat())).status_code == 201


def test_state_just_before_at_and_after_grant_and_withdrawal(tenant, subject):
    granted = NOW - dt.timedelta(hours=2)
    withdrawn = NOW - dt.timedelta(hours=1)
    tenant.consent(subject, "navigation", "granted", at=granted)
    tenant.consent(subject, "navigation", "withdrawn", at=withdrawn)
    expected = [
        (granted - US, "none", False, None),
        (granted, "granted", True, granted),
        (withdrawn - US, "granted", True, granted),
        (withdrawn, "withdrawn", False, withdrawn),
        (withdrawn + US, "withdrawn", False, withdrawn),
    ]
    for at, status, active, since in expected:
        nav = state(tenant, subject, at)["navigation"]
        assert (nav["status"], nav["active"]) == (status, active), at
        assert (dt.datetime.fromisoformat(nav["since"]) if nav["since"] else None) == since, at
    assert state(tenant, subject)["navigation"]["status"] == "withdrawn"


def test_state_echoes_its_instant_and_rejects_a_bad_one(tenant, subject):
    at = NOW - dt.timedelta(minutes=5)
    body = tenant.get(f"/v1/subjects/{subject}/consent-state",
                      query_string={"at": at.isoformat()}).get_json()
    assert body["subject_id"] == subject
    assert dt.datetime.fromisoformat(body["at"]) == at
    for bad in ("yesterday", "2024-01-01T10:00:00"):
        resp = tenant.get(f"/v1/subjects/{subject}/consent-state", query_string={"at": bad})
        assert resp.status_code == 422, bad
        assert "at" in resp.get_json()["error"]["details"]


def test_purpose_without_consent_requirement_is_active_without_events(tenant, subject):
    tenant.purpose("dispatch", requires_consent=False)
    states = state(tenant, subject)
    assert states["dispatch"]["active"] is True and states["dispatch"]["status"] == "none"
    assert states["navigation"]["active"] is False


def test_same_instant_later_entry_wins(tenant, subject):
    at = NOW - dt.timedelta(minutes=30)
    tenant.consent(subject, "navigation", "granted", at=at)
    tenant.consent(subject, "navigation", "withdrawn", at=at)
    assert state(tenant, subject, at)["navigation"]["status"] == "withdrawn"


def test_history_is_ordered_by_instant_and_keeps_everything(tenant, subject):
    tenant.consent(subject, "navigation", "withdrawn", at=NOW - dt.timedelta(hours=1))
    tenant.consent(subject, "navigation", "granted", at=NOW - dt.timedelta(hours=3))
    tenant.consent(subject, "navigation", "granted", at=NOW - dt.timedelta(hours=2))
    events = tenant.get(f"/v1/subjects/{subject}/consents").get_json()["events"]
    assert [e["status"] for e in events] == ["granted", "granted", "withdrawn"]
    ats = [dt.datetime.fromisoformat(e["at"]) for e in events]
    assert ats == sorted(ats)


def test_ledger_has_no_update_or_delete_endpoint(tenant, subject):
    event = tenant.consent(subject, "navigation")
    path = f"/v1/subjects/{subject}/consents"
    for resp in (tenant.put(path, consent_body()), tenant.patch(path, {"status": "withdrawn"}),
                 tenant.delete(path)):
        assert resp.status_code == 405
        assert resp.get_json()["error"]["code"] == "method_not_allowed"
    for resp in (tenant.patch(f"{path}/{event['event_id']}", {"status": "withdrawn"}),
                 tenant.delete(f"{path}/{event['event_id']}")):
        assert resp.status_code in (404, 405)
    assert len(tenant.get(path).get_json()["events"]) == 1


@pytest.fixture
def app_conn(config, tenant):
    url = libpq_url(config.app_database_url)
    with psycopg.connect(url, autocommit=True) as conn:
        yield _Scoped(conn, tenant.tenant_id)


class _Scoped:
    """The app role's connection, each statement in a transaction scoped to the tenant as
    the app scopes one (SET LOCAL: a session-wide setting never reaches Citus's workers)."""

    def __init__(self, conn, tenant_id):
        self._conn, self._tenant_id = conn, tenant_id

    def execute(self, query, params=None):
        with self._conn.transaction():
            self._conn.execute(tenant_scope_sql(self._tenant_id))
            return self._conn.execute(query, params)


def test_database_refuses_changing_the_ledger_for_the_app_role(tenant, subject, app_conn,
                                                               superuser):
    tenant.consent(subject, "navigation")
    assert app_conn.execute("SELECT count(*) FROM consent_events").fetchone()[0] == 1
    for statement in ("UPDATE consent_events SET status = 'withdrawn'",
                      "DELETE FROM consent_events"):
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            app_conn.execute(statement)
    assert superuser.execute("SELECT status FROM consent_events WHERE tenant_id = %s",
                             (tenant.tenant_id,)).fetchall() == [("granted",)]


def test_database_refuses_changing_policy_history_for_the_app_role(tenant, app_conn):
    assert app_conn.execute("SELECT count(*) FROM policy_versions").fetchone()[0] == 1
    for statement in ("UPDATE policy_versions SET created_by = 'x'",
                      "DELETE FROM policy_versions"):
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            app_conn.execute(statement)


def test_consent_roles(tenant, subject):
    grant = {"purpose": "navigation", "status": "granted", "policy_version": "v1"}
    assert tenant.post("/v1/device/consents", grant).status_code == 403  # member token
    auditor = tenant.token_for("auditor")
    assert tenant.get(f"/v1/subjects/{subject}/consents", token=auditor).status_code == 200
    assert tenant.get(f"/v1/subjects/{subject}/consent-state", token=auditor).status_code == 200
    assert tenant.post(f"/v1/subjects/{subject}/consents", consent_body(),
                       token=auditor).status_code == 403
    for role in ("analyst", "dispatcher"):
        token = tenant.token_for(role)
        assert tenant.get(f"/v1/subjects/{subject}/consents", token=token).status_code == 403
        assert tenant.get(f"/v1/subjects/{subject}/consent-state",
                          token=token).status_code == 403
    assert tenant.post(f"/v1/subjects/{subject}/consents", consent_body(),
                       token=tenant.token_for("admin")).status_code == 201


def test_consent_for_another_tenants_subject_is_404(make_tenant):
    a, b = make_tenant("a"), make_tenant("b")
    a.purpose("navigation")
    b.purpose("navigation")
    sid = b.subject()["subject_id"]
    resp = a.post(f"/v1/subjects/{sid}/consents", consent_body())
    assert resp.status_code == 404
    assert b.get(f"/v1/subjects/{sid}/consents").get_json()["events"] == []


# ---- from the device -------------------------------------------------------------------------

def test_device_consent_takes_effect_at_once(tenant, subject):
    device = tenant.device(subject)
    resp = tenant.post("/v1/device/consents", {"purpose": "navigation", "status": "granted",
                                               "policy_version": "app-3"}, token=device["token"])
    assert resp.status_code == 201
    event = resp.get_json()
    assert event["source"] == "device" and event["evidence"] == {}
    assert event["actor_id"] == f"device:{device['device_id']}"
    assert state(tenant, subject)["navigation"]["active"] is True
    history = tenant.get(f"/v1/subjects/{subject}/consents").get_json()["events"]
    assert [(e["source"], e["policy_version"]) for e in history] == [("device", "app-3")]


def test_device_consent_may_be_backdated_a_day_but_not_more_nor_future(tenant, subject):
    token = tenant.device(subject)["token"]
    now = dt.datetime.now(dt.UTC)
    for at, status in ((now - dt.timedelta(hours=25), 422),
                       (now + dt.timedelta(minutes=5), 422),
                       (now - dt.timedelta(hours=23), 201)):
        resp = tenant.post("/v1/device/consents", {
            "purpose": "navigation", "status": "granted", "policy_version": "v1",
            "at": at.isoformat()}, token=token)
        assert resp.status_code == status, at
        if status == 422:
            assert "at" in resp.get_json()["error"]["details"]

