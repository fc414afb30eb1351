"""Subject requests, the access bundle, erasure with a tombstone, disclosures."""

import datetime as dt
import io
import json
import zipfile

import pytest

from tests.tracking import ping

DAY = dt.timedelta(days=1)


@pytest.fixture
def tracked(tenant, make_tracked):
    t = make_tracked(tenant)
    t.pings([ping(id=str(i), lat=52.5 + i / 1000) for i in range(5)])
    return t


def request(tenant, subject_id, kind, **extra):
    resp = tenant.post("/v1/requests", {"subject_id": subject_id, "kind": kind, **extra})
    assert resp.status_code == 201, resp.get_json()
    return resp.get_json()


def test_requests_have_due_dates_and_overdue_ones_show(tenant, tracked):
    fresh = request(tenant, tracked.subject_id, "access")
    due = dt.datetime.fromisoformat(fresh["due_at"]) - dt.datetime.fromisoformat(
        fresh["received_at"])
    assert due == 30 * DAY and not fresh["overdue"]
    late = request(tenant, tracked.subject_id, "erasure",
                   received_at=(dt.datetime.now(dt.UTC) - 31 * DAY).isoformat())
    assert late["overdue"]
    overdue = tenant.get("/v1/requests?overdue=true").get_json()["requests"]
    assert [r["request_id"] for r in overdue] == [late["request_id"]]
    metrics = tenant.client.get("/metrics").get_data(as_text=True)
    assert "govern_subject_requests_overdue 1" in metrics
    assert "govern_subject_requests_open 2" in metrics


def test_device_asks_for_its_own_subject(tracked, tenant):
    resp = tracked.post("/v1/device/requests", {"kind": "access"})
    assert resp.status_code == 201
    assert resp.get_json()["subject_id"] == tracked.subject_id
    assert resp.get_json()["source"] == "device"


def test_access_bundle_contains_every_category(tenant, tracked):
    tenant.get(f"/v1/subjects/{tracked.subject_id}/track", token=tenant.token_for("dispatcher"),
               query_string={"purpose": "navigation"})
    tenant.post("/v1/disclosures", {
        "authority": "Police HQ", "legal_basis": "warrant 17/2026",
        "subject_ids": [tracked.subject_id], "description": "pings of 2026-11-20",
        "disclosed_at": dt.datetime.now(dt.UTC).isoformat(),
        "notified_at": dt.datetime.now(dt.UTC).isoformat()})  # gag orders: test_gag_orders
    req = request(tenant, tracked.subject_id, "access")
    resp = tenant.get(f"/v1/requests/{req['request_id']}/bundle")
    assert resp.status_code == 200 and resp.mimetype == "application/zip"
    zf = zipfile.ZipFile(io.BytesIO(resp.get_data()))
    names = set(zf.namelist())
    assert {"README.txt", "subject.json", "pings.geojson", "consents.json", "access_log.json",
            "disclosures.json", "requests.json"} <= names
    pings = json.loads(zf.read("pings.geojson"))
    assert len(pings["features"]) == 5
    assert set(pings["features"][0]["properties"]["purposes"]) == {"navigation", "analytics"}
    subject = json.loads(zf.read("subject.json"))
    assert subject["devices"][0]["device_id"] == tracked.device_id
    assert len(json.loads(zf.read("consents.json"))) == 2
    access = json.loads(zf.read("access_log.json"))
    assert any(e["action"] == "read.track" and e["purpose"] == "navigation" for e in access)
    assert json.loads(zf.read("disclosures.json"))[0]["authority"] == "Police HQ"
    done = tenant.get(f"/v1/requests/{req['request_id']}").get_json()
    assert done["status"] == "completed" and done["evidence"]["exported"]["pings"] == 5
    assert tenant.get(f"/v1/requests/{req['request_id']}/bundle").status_code == 409


def test_erasure_leaves_no_ping_token_or_device_and_a_tombstone(tenant, tracked, superuser):
    req = request(tenant, tracked.subject_id, "erasure")
    resp = tenant.post(f"/v1/requests/{req['request_id']}/erase", {})
    assert resp.status_code == 200, resp.get_json()
    counts = resp.get_json()["counts"]
    assert counts["pings"] == 5 and counts["devices"] == 1 and counts["tokens"] == 1
    for table in ("pings", "devices", "api_tokens WHERE kind = 'device'"):
        assert superuser.execute(f"SELECT count(*) FROM {table}").fetchone()[0] == 0, table
    stone = superuser.execute("SELECT erased_by, counts->>'pings', consent_ledger_kept "
                              "FROM erasure_tombstones").fetchone()
    assert stone[0].startswith("member:") and stone[1] == "5" and stone[2] is True
    ref, name = superuser.execute("SELECT external_ref, display_name FROM subjects").fetchone()
    assert ref.startswith("erased-") and name is None
    assert superuser.execute("SELECT count(*) FROM rollups").fetchone()[0] > 0  # aggregates
    assert tracked.pings([ping()]).status_code == 401  # the device token is gone
    assert tenant.get(f"/v1/requests/{req['request_id']}").get_json()["status"] == "completed"


def test_erasure_drops_the_consent_ledger_when_no_proof_is_kept(tenant, tracked, superuser):
    tenant.patch("/v1/policy", {"keep_consent_proof_on_erasure": False})
    req = request(tenant, tracked.subject_id, "erasure")
    assert tenant.post(f"/v1/requests/{req['request_id']}/erase", {}).status_code == 200
    assert superuser.execute("SELECT count(*) FROM consent_events").fetchone()[0] == 0


def test_held_subject_cannot_be_erased(tenant, tracked, superuser):
    tenant.post("/v1/legal-holds", {"subject_id": tracked.subject_id, "reason": "litigation"})
    req = request(tenant, tracked.subject_id, "erasure")
    resp = tenant.post(f"/v1/requests/{req['request_id']}/erase", {})
    assert resp.status_code == 409 and resp.get_json()["error"]["code"] == "legal_hold"
    assert superuser.execute("SELECT count(*) FROM pings").fetchone()[0] == 5


def test_only_owners_and_admins_fulfil(tenant, tracked):
    req = request(tenant, tracked.subject_id, "erasure")
    resp = tenant.post(f"/v1/requests/{req['request_id']}/erase", {},
                       token=tenant.token_for("auditor"))
    assert resp.status_code == 403
    assert tenant.get("/v1/requests", token=tenant.token_for("auditor")).status_code == 200


def test_disclosures_owner_writes_others_read(tenant, tracked):
    body = {"authority": "Court", "legal_basis": "order 5", "subject_ids": [tracked.subject_id],
            "description": "one day", "disclosed_at": dt.datetime.now(dt.UTC).isoformat(),
            "notified_at": dt.datetime.now(dt.UTC).isoformat()}
    assert tenant.post("/v1/disclosures", body,
                       token=tenant.token_for("admin")).status_code == 403
    created = tenant.post("/v1/disclosures", body)
    assert created.status_code == 201
    missing_notice = {**body, "notified_at": None}
    assert tenant.post("/v1/disclosures", missing_notice).status_code == 422
    listed = tenant.get(f"/v1/disclosures?subject_id={tracked.subject_id}",
                        token=tenant.token_for("auditor")).get_json()["disclosures"]
    assert [d["authority"] for d in listed] == ["Court"]


def test_export_streams_in_chunks(sessions, tenant, make_tracked, superuser):
    """A big subject is written as it is read (server-side cursor), many chunks."""
    from govern.domain.rights import export_bundle

    tracked = make_tracked(tenant)
    superuser.execute("SELECT govern_ensure_ping_partition(d::date) FROM "
                      "generate_series(current_date - 1, current_date, '1 day') d")
    superuser.execute(
        "INSERT INTO pings (tenant_id, device_id, subject_id, t, client_key, purpose_mask, "
        "precision_m, geom) SELECT %s, %s, %s, now() - k * interval '1 second', k::text, 1, 10,"
        " ST_SetSRID(ST_MakePoint(13.4, 52.5), 4326) FROM generate_series(1, 12000) k",
        (tenant.tenant_id, tracked.device_id, tracked.subject_id))
    chunks = list(export_bundle(sessions, tenant.tenant_id, tracked.subject_id,
                                dt.datetime.now(dt.UTC)))
    assert len([c for c in chunks if c]) >= 3
    zf = zipfile.ZipFile(io.BytesIO(b"".join(chunks)))
    assert len(json.loads(zf.read("pings.geojson"))["features"]) == 12000
