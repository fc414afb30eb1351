"""The audit chain detects an edit, a deletion and a reorder; refused writes are audited."""

import datetime as dt
import uuid

import pytest

from govern.config import libpq_url
from govern.db import tenant_session
from govern.domain.audit import verify_chain
from govern.domain.rights import erase_subject


def verify(sessions, tenant):
    with tenant_session(sessions, tenant.tenant_id) as s:
        return verify_chain(s)


@pytest.fixture
def chained(tenant):
    for role in ("analyst", "auditor", "dispatcher"):
        tenant.member(role)
    return tenant


def tamper(superuser, sql, *params):
    """As the table owner, with the append-only trigger out of the way."""
    superuser.execute("ALTER TABLE audit_log DISABLE TRIGGER audit_log_append_only")
    superuser.execute("ALTER TABLE audit_log DISABLE TRIGGER audit_log_chain")
    try:
        superuser.execute(sql, params)
    finally:
        superuser.execute("ALTER TABLE audit_log ENABLE TRIGGER audit_log_append_only")
        superuser.execute("ALTER TABLE audit_log ENABLE TRIGGER audit_log_chain")


def test_intact_chain_verifies(chained, sessions):
    result = verify(sessions, chained)
    assert result["ok"] and result["entries"] == 4 and len(result["head"]) == 64


def test_edit_is_detected(chained, sessions, superuser):
    tamper(superuser, "UPDATE audit_log SET details = '{\"role\": \"owner\"}' WHERE seq = 2")
    result = verify(sessions, chained)
    assert not result["ok"] and result["first_broken_seq"] == 2
    assert "content_changed" in result["reasons"]


def test_deletion_is_detected(chained, sessions, superuser):
    tamper(superuser, "DELETE FROM audit_log WHERE seq = 2")
    result = verify(sessions, chained)
    assert not result["ok"] and result["first_broken_seq"] == 3
    assert "chain_link_broken" in result["reasons"] and "sequence_gap" in result["reasons"]


def test_reorder_is_detected(chained, sessions, superuser):
    for sql in ("UPDATE audit_log SET seq = -2 WHERE seq = 2",
                "UPDATE audit_log SET seq = 2 WHERE seq = 3",
                "UPDATE audit_log SET seq = 3 WHERE seq = -2"):
        tamper(superuser, sql)
    assert not verify(sessions, chained)["ok"]


def test_app_role_cannot_change_or_delete(chained, config):
    import psycopg

    url = libpq_url(config.app_database_url)
    with psycopg.connect(url) as conn:
        conn.execute("SELECT set_config('govern.tenant_id', %s, false)",
                     (str(chained.tenant_id),))
        for sql in ("UPDATE audit_log SET action = 'x'", "DELETE FROM audit_log"):
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                conn.execute(sql)
            conn.rollback()


def test_verify_endpoint_and_listing(chained):
    auditor = chained.token_for("auditor")
    assert chained.get("/v1/audit/verify", token=auditor).get_json()["ok"]
    page = chained.get("/v1/audit?limit=2", token=auditor).get_json()
    assert [e["seq"] for e in page["entries"]] == [1, 2]
    rest = chained.get(f"/v1/audit?after={page['next_after']}", token=auditor).get_json()
    assert rest["entries"][0]["seq"] == 3
    invites = chained.get("/v1/audit?action=member", token=auditor).get_json()["entries"]
    assert {e["action"] for e in invites} == {"member.invite"}
    assert chained.get("/v1/audit", token=chained.token_for("analyst")).status_code == 403


def test_refused_authorisation_is_audited(chained, superuser):
    analyst = chained.token_for("analyst")
    assert chained.patch("/v1/policy", {"k_min_subjects": 9}, token=analyst).status_code == 403
    row = superuser.execute("SELECT action, details->>'role', details->>'path' FROM audit_log "
                            "ORDER BY seq DESC LIMIT 1").fetchone()
    assert row == ("auth.denied", "analyst", "/v1/policy")


def test_cli_verify_exits_nonzero_on_a_broken_chain(chained, superuser, database_url):
    import os
    import subprocess
    import sys

    env = {**os.environ, "DATABASE_URL": database_url}
    ok = subprocess.run([sys.executable, "-m", "govern.cli", "audit", "verify"], env=env,
                        capture_output=True, text=True)
    assert ok.returncode == 0, ok.stderr
    tamper(superuser, "UPDATE audit_log SET action = 'x' WHERE seq = 1")
    bad = subprocess.run([sys.executable, "-m", "govern.cli", "audit", "verify", "--tenant",
                          str(chained.tenant_id)], env=env, capture_output=True, text=True)
    assert bad.returncode == 1 and '"first_broken_seq": 1' in bad.stdout


def test_the_log_reads_with_names_resolved_now_and_filters_by_them(tenant, sessions):
    """Names come from the members, subjects and devices as they are when the log is read:
    the chain holds ids only, so renaming (or erasing) changes the view, never the chain."""
    auditor = tenant.member("auditor", email="Ada.Auditor@example.com")["token"]
    admin = tenant.member("admin", email="bo.admin@example.com")["token"]
    subject = tenant.subject("worker-042")
    tenant.post("/v1/subjects", {"external_ref": "worker-007"}, token=admin)

    entries = tenant.get("/v1/audit", token=auditor).get_json()["entries"]
    created = [e for e in entries if e["action"] == "subject.create"]
    assert [e["target_label"] for e in created] == ["worker-042", "worker-007"]
    assert created[1]["actor_email"] == "bo.admin@example.com"
    invites = [e for e in entries if e["action"] == "member.invite"]
    assert [e["target_label"] for e in invites] == ["Ada.Auditor@example.com",
                                                    "bo.admin@example.com"]

    by_member = tenant.get("/v1/audit?member=BO.ADMIN", token=auditor).get_json()["entries"]
    assert [e["action"] for e in by_member] == ["subject.create"]
    assert all(e["actor_email"] == "bo.admin@example.com" for e in by_member)
    # an entry about a subject (its consent) is found by the subject's reference
    tenant.purpose("dispatch")
    tenant.consent(subject["subject_id"], "dispatch")
    by_ref = tenant.get("/v1/audit?subject_ref=Worker-04", token=auditor).get_json()["entries"]
    assert by_ref and {e["subject_ref"] for e in by_ref} == {"worker-042"}
    assert all(e["subject_id"] == subject["subject_id"] for e in by_ref)
    # LIKE's wildcards are plain characters here
    assert tenant.get("/v1/audit?member=%25", token=auditor).get_json()["entries"] == []

    # erased: its entries stay (the chain is append-only) but no longer name the subject
    erase_subject(sessions, tenant.tenant_id, uuid.UUID(subject["subject_id"]), "cli",
                  now=dt.datetime.now(dt.UTC))
    again = tenant.get(f"/v1/audit?subject_id={subject['subject_id']}&action=consent",
                       token=auditor).get_json()["entries"]
    assert again and {e["subject_ref"] for e in again} == {f"erased-{subject['subject_id']}"}
    assert tenant.get("/v1/audit?subject_ref=worker-042", token=auditor).get_json()[
        "entries"] == []
    assert tenant.get("/v1/audit/verify", token=auditor).get_json()["ok"]


def test_the_log_pages_newest_first_with_order_desc(chained):
    auditor = chained.token_for("auditor")
    n = chained.get("/v1/audit/verify", token=auditor).get_json()["entries"]
    first = chained.get("/v1/audit?order=desc&limit=2", token=auditor).get_json()
    assert [e["seq"] for e in first["entries"]] == [n, n - 1]
    rest = chained.get(f"/v1/audit?order=desc&after={first['next_after']}", token=auditor)
    assert [e["seq"] for e in rest.get_json()["entries"]] == list(range(n - 2, 0, -1))
    bad = chained.get("/v1/audit?order=sideways", token=auditor)
    assert bad.status_code == 422 and "order" in str(bad.get_json()["error"]["details"])
