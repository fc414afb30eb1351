"""The routing proof (Citus tier only, `make test-citus`): a representative flow runs through
the API, every statement the app's engine sends is captured, and each is EXPLAINed on the
coordinator. A statement routes to one shard when every distributed scan in its plan has
one task. EXPLAIN runs as the superuser, which bypasses row-level security: a statement
routes only by the `tenant_id = :param` it names itself, never by the RLS policy (whose
`current_setting(...)` Citus cannot prune by).

Statements that fan out are listed in CROSS_SHARD with why; any other that fans out fails
the test.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import re

import psycopg
import pytest
from sqlalchemy import event

from tests.conftest import CITUS
from tests.tracking import ping

pytestmark = pytest.mark.skipif(not CITUS, reason="needs the Citus cluster (make test-citus)")

# a substring of the statement → why it reaches every shard
CROSS_SHARD: dict[str, str] = {}

EXPLAINABLE = re.compile(r"^\s*(SELECT|INSERT|UPDATE|DELETE|WITH)\b", re.I | re.S)


def _task_counts(node) -> list[int]:
    found = []
    if isinstance(node, dict):
        if "Task Count" in node:
            found.append(node["Task Count"])
        for value in node.values():
            found += _task_counts(value)
    elif isinstance(node, list):
        for value in node:
            found += _task_counts(value)
    return found


def _flow(tenant, tracked, now):
    """Enrol, consent, ingest with zones, track, positions, heatmap, travel/visits/OD,
    export, erasure, audit verify, at the app's instant `now`; returns each step's (method,
    path, status)."""
    steps = []

    def call(method, path, token=None, **kw):
        resp = getattr(tenant, method)(path, token=token, **kw)
        steps.append((method, path, resp.status_code))
        return resp

    square = {"type": "Polygon", "coordinates": [[[13.40, 52.51], [13.41, 52.51],
                                                  [13.41, 52.53], [13.40, 52.53],
                                                  [13.40, 52.51]]]}
    call("post", "/v1/zones", json={"name": "yard", "geometry": square})
    pings = [ping(52.52 + i * 1e-4, 13.405, t=(now - dt.timedelta(minutes=30 - i)).isoformat())
             for i in range(10)]
    resp = tracked.pings(pings)
    steps.append(("post", "/v1/pings", resp.status_code))
    assert resp.status_code < 500, resp.get_json()
    resp = tracked.pings([ping(t=(now - dt.timedelta(minutes=1)).isoformat())])  # one a request
    assert resp.status_code < 500, resp.get_json()
    # each app's own path, one location a request (tests/api/test_ingest_formats.py shapes)
    client, bearer = tenant.client, {"Authorization": f"Bearer {tracked.device_token}"}
    basic = base64.b64encode(f"phone:{tracked.device_token}".encode()).decode()
    at = now - dt.timedelta(seconds=50)
    for path, kw in (
            ("/v1/ingest/owntracks", {"headers": {"Authorization": f"Basic {basic}"}, "json": {
                "_type": "location", "lat": 52.5203, "lon": 13.4051, "acc": 8,
                "tst": int(at.timestamp()), "tid": "ph"}}),
            (f"/v1/ingest/osmand/{tenant.tenant_id}", {"query_string": {
                "id": tracked.identifier, "lat": "52.5204", "lon": "13.4052",
                "timestamp": str(int(at.timestamp()) + 1)}}),
            ("/v1/ingest/transistor", {"headers": bearer, "json": {"location": {
                "uuid": "u1", "timestamp": (at + dt.timedelta(seconds=2)).isoformat(),
                "coords": {"latitude": 52.5205, "longitude": 13.4053, "accuracy": 9}}}}),
            ("/v1/ingest/overland", {"headers": bearer, "json": {"locations": [{
                "type": "Feature",
                "geometry": {"type": "Point", "coordinates": [13.4054, 52.5206]},
                "properties": {"timestamp": (at + dt.timedelta(seconds=3)).isoformat(),
                               "horizontal_accuracy": 10}}]}})):
        resp = client.post(path, **kw)
        steps.append(("post", path, resp.status_code))
        assert resp.status_code < 300, (path, resp.get_data(as_text=True))
    dispatcher = tenant.token_for("dispatcher")
    analyst = tenant.token_for("analyst")
    sid = tracked.subject_id
    call("get", f"/v1/subjects/{sid}/track", token=dispatcher,
         query_string={"purpose": "navigation"})
    call("get", "/v1/positions/latest", token=dispatcher, query_string={"purpose": "navigation"})
    day = now.replace(hour=0, minute=0, second=0, microsecond=0)
    span = {"from": (day - dt.timedelta(days=7)).isoformat(), "to": day.isoformat()}
    call("get", "/v1/reports/heatmap", token=analyst, query_string=span)
    call("get", f"/v1/subjects/{sid}/travel", token=dispatcher,
         query_string={"purpose": "navigation"})
    call("get", "/v1/reports/travel", token=analyst, query_string=span)
    call("get", "/v1/reports/visits", token=analyst, query_string=span)
    call("get", "/v1/reports/od", token=analyst, query_string={**span, "zones": "h3:7"})
    access = call("post", "/v1/requests", json={"subject_id": sid, "kind": "access"}).get_json()
    call("get", f"/v1/requests/{access.get('request_id')}/bundle")
    erasure = call("post", "/v1/requests", json={"subject_id": sid, "kind": "erasure"}).get_json()
    call("post", f"/v1/requests/{erasure.get('request_id')}/erase", json={})
    call("get", "/v1/audit/verify", token=tenant.token_for("auditor"))
    return steps


def test_every_request_statement_routes_to_one_shard(app, tenant, make_tracked, superuser):
    engine = app.extensions["govern"].engine
    captured: list[tuple[str, object]] = []

    def capture(conn, cursor, statement, parameters, context, executemany):
        if EXPLAINABLE.match(statement):
            captured.append((statement, parameters[0] if executemany else parameters))

    event.listen(engine, "before_cursor_execute", capture)
    try:
        # purposes, enrol and consent through the API; a chosen identifier (no global
        # OsmAnd route: see docs/scaling.md, limits)
        now = app.extensions["govern"].clock.now()
        tracked = make_tracked(tenant, identifier=f"route-{tenant.tenant_id.hex[:12]}",
                               consent_at=now - dt.timedelta(hours=23))
        steps = _flow(tenant, tracked, now)
    finally:
        event.remove(engine, "before_cursor_execute", capture)
    assert len(steps) > 10 and captured

    fanout, routed, unique = [], 0, {}
    for statement, params in captured:
        unique.setdefault(statement, params)
    superuser.execute("BEGIN")
    try:
        for statement, params in unique.items():
            superuser.execute("SAVEPOINT s")
            try:
                rows = superuser.execute("EXPLAIN (FORMAT JSON) " + statement,
                                         params).fetchone()
            except psycopg.Error as exc:  # Citus cannot plan it at all
                fanout.append((f"refused: {str(exc).splitlines()[0]}",
                               " ".join(statement.split())[:300]))
                continue
            finally:
                superuser.execute("ROLLBACK TO SAVEPOINT s")
            plan = rows[0] if not isinstance(rows[0], str) else json.loads(rows[0])
            counts = _task_counts(plan)
            if any(n != 1 for n in counts):
                if not any(key in statement for key in CROSS_SHARD):
                    fanout.append((max(counts), " ".join(statement.split())[:300]))
            else:
                routed += 1
    finally:
        superuser.execute("ROLLBACK")
    print(f"\n{routed} of {len(unique)} distinct statements route to one shard")
    failed = [step for step in steps if step[2] >= 500]
    report = "\n".join(f"  [{n} tasks] {s}" for n, s in fanout)
    print(report)
    assert not failed and not fanout, (
        f"server errors: {failed}\nstatements reaching more than one shard:\n{report}")
