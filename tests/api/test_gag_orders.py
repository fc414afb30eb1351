"""The access bundle and non-notification orders: what the subject is not (yet) told."""

import datetime as dt
import io
import json
import zipfile

import pytest

from tests.tracking import ping

NOW = dt.datetime.now(dt.UTC)


@pytest.fixture
def tracked(tenant, make_tracked):
    t = make_tracked(tenant)
    t.pings([ping(id="1")])
    return t


def _bundle(tenant, sid):
    req = tenant.post("/v1/requests", {"subject_id": sid, "kind": "access"}).get_json()
    resp = tenant.get(f"/v1/requests/{req['request_id']}/bundle")
    assert resp.status_code == 200
    zf = zipfile.ZipFile(io.BytesIO(resp.get_data()))
    done = tenant.get(f"/v1/requests/{req['request_id']}").get_json()
    return zf, done["evidence"]["exported"]


def _disclose(tenant, sid, legal_basis, **notice):
    resp = tenant.post("/v1/disclosures", {
        "authority": "Federal Police", "legal_basis": legal_basis,
        "subject_ids": [sid], "description": "pings of one day",
        "disclosed_at": NOW.isoformat(), **notice})
    assert resp.status_code == 201, resp.get_json()
    return resp.get_json()


def test_a_disclosure_under_a_standing_gag_order_is_withheld_until_notice(tenant, tracked):
    sid = tracked.subject_id
    gagged = _disclose(tenant, sid, "order 4711/2026 (sealed)",
                       not_notified_reason="court order forbids notice")
    _disclose(tenant, sid, "warrant 12/2026", notified_at=NOW.isoformat())
    zf, counts = _bundle(tenant, sid)
    disclosures = json.loads(zf.read("disclosures.json"))
    assert [d["legal_basis"] for d in disclosures] == ["warrant 12/2026"]
    text = b"".join(zf.read(n) for n in zf.namelist())
    assert b"4711/2026" not in text and b"forbids notice" not in text
    access = json.loads(zf.read("access_log.json"))
    assert [e["details"]["legal_basis"] for e in access
            if e["action"] == "disclosure.create"] == ["warrant 12/2026"]
    assert counts["disclosures"] == 1
    # the order lifted and notice given: now the subject sees it
    resp = tenant.patch(f"/v1/disclosures/{gagged['disclosure_id']}",
                        {"notified_at": NOW.isoformat()})
    assert resp.status_code == 200, resp.get_json()
    zf, counts = _bundle(tenant, sid)
    ids = {d["disclosure_id"] for d in json.loads(zf.read("disclosures.json"))}
    assert gagged["disclosure_id"] in ids and len(ids) == 2 and counts["disclosures"] == 2
    access = json.loads(zf.read("access_log.json"))
    assert sum(e["action"] == "disclosure.create" for e in access) == 2


def test_legal_hold_shows_its_period_not_its_reason(tenant, tracked):
    sid = tracked.subject_id
    resp = tenant.post("/v1/legal-holds", {"subject_id": sid,
                                           "reason": "preservation request, case 17-0815"})
    assert resp.status_code == 201, resp.get_json()
    zf, _ = _bundle(tenant, sid)
    holds = json.loads(zf.read("subject.json"))["legal_holds"]
    assert len(holds) == 1 and "reason" not in holds[0] and holds[0]["starts_at"]
    text = b"".join(zf.read(n) for n in zf.namelist())
    assert b"17-0815" not in text
    access = json.loads(zf.read("access_log.json"))
    assert any(e["action"] == "legal_hold.create" for e in access)
