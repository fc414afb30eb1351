"""Live-position reads are audited per subject: findable by subject and in the bundle."""

import datetime as dt
import io
import json
import zipfile

from tests.tracking import NAV, ping


def test_live_positions_read_is_found_per_subject(tenant, make_tracked):
    first = make_tracked(tenant)
    sid2 = tenant.subject("worker-2")["subject_id"]
    device = tenant.device(sid2)
    tenant.consent(sid2, "navigation", at=dt.datetime.now(dt.UTC) - dt.timedelta(hours=1))
    first.pings([ping(id="a")])
    tenant.post("/v1/pings", {"pings": [ping(id="b", lat=52.53)]}, token=device["token"])
    dispatcher = tenant.token_for("dispatcher")
    resp = tenant.get("/v1/positions/latest", token=dispatcher,
                      query_string={"purpose": NAV["key"]})
    assert len(resp.get_json()["features"]) == 2
    auditor = tenant.token_for("auditor")
    for sid in (first.subject_id, sid2):
        entries = tenant.get("/v1/audit", token=auditor,
                             query_string={"subject_id": sid, "action": "read"}
                             ).get_json()["entries"]
        assert [(e["action"], e["details"]["purpose"]) for e in entries] == [
            ("read.positions", "navigation")], sid
    req = tenant.post("/v1/requests", {"subject_id": sid2, "kind": "access"}).get_json()
    bundle = zipfile.ZipFile(io.BytesIO(tenant.get(
        f"/v1/requests/{req['request_id']}/bundle").get_data()))
    access = json.loads(bundle.read("access_log.json"))
    assert [e["action"] for e in access if e["action"].startswith("read.")] == \
        ["read.positions"]


def test_a_live_read_that_finds_nobody_is_still_audited(tenant, make_tracked, superuser):
    make_tracked(tenant)
    tenant.get("/v1/positions/latest", token=tenant.token_for("dispatcher"),
               query_string={"purpose": "navigation"})
    rows = superuser.execute("SELECT action, target_type, subject_id FROM audit_log "
                             "WHERE action = 'read.positions'").fetchall()
    assert rows == [("read.positions", "purpose", None)]
