"""One tenant's heavy reads cannot stall another's: each tenant holds at most
HEAVY_READS_PER_TENANT of them at once and the node at most HEAVY_READS_PER_NODE, across
all web processes (advisory locks), for the whole request."""

import threading
import time
from dataclasses import replace

import psycopg
import pytest

from govern.api.auth import require_member
from govern.api.common import db
from govern.app import create_app
from govern.config import libpq_url
from govern.hardening import (
    HEAVY_LOCK_SPACE,
    NODE_LOCK_SPACE,
    heavy,
    heavy_lock_key,
    node_lock_key,
)
from tests.tracking import ping


@pytest.fixture
def busy(config):
    """Hold slots as a long read in another web process would: a transaction with the
    advisory lock taken, on its own connection as the app role. `hold(tenant_id, slot)`
    takes a tenant's slot, `hold(None, slot)` one of the node's."""
    conns = []

    def hold(tenant_id, slot):
        conn = psycopg.connect(libpq_url(config.app_database_url))
        if tenant_id is None:
            key = (NODE_LOCK_SPACE + slot, node_lock_key(config.heavy_node))
        else:
            key = (HEAVY_LOCK_SPACE + slot, heavy_lock_key(tenant_id))
        conn.execute("SELECT pg_advisory_xact_lock(%s, %s)", key)
        conns.append(conn)
        return conn

    yield hold
    for conn in conns:
        conn.close()


def _free(config, space, key) -> bool:
    """Whether another process could take the lock now (taken and released at once)."""
    with psycopg.connect(libpq_url(config.app_database_url)) as conn:
        sql = "SELECT pg_try_advisory_xact_lock(%s, %s)"
        return conn.execute(sql, (space, key)).fetchone()[0]


def _track_path(tracked):
    return f"/v1/subjects/{tracked.subject_id}/track?purpose=navigation"


def _track(tracked, client=None):
    headers = tracked.tenant.headers(tracked.tenant.token_for("dispatcher"))
    return (client or tracked.tenant.client).get(_track_path(tracked), headers=headers)


def _wait_for(condition, seconds=120):  # a loaded machine is slow to get there
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "the condition never held"
        time.sleep(0.05)


def test_a_busy_tenant_is_refused_while_another_is_served(make_tenant, make_tracked, busy,
                                                         config):
    noisy = make_tracked(make_tenant("noisy"))
    quiet = make_tracked(make_tenant("quiet"))
    noisy.pings([ping()])
    quiet.pings([ping()])
    assert config.heavy_reads_per_tenant == 2
    held = [busy(noisy.tenant.tenant_id, slot) for slot in range(2)]
    refused = _track(noisy)
    assert refused.status_code == 429, refused.get_json()
    assert refused.get_json()["error"]["code"] == "tenant_busy"
    assert int(refused.headers["Retry-After"]) > 0
    heatmap = noisy.tenant.get("/v1/reports/heatmap", token=noisy.tenant.token_for("analyst"),
                               query_string={"from": "2026-11-02T00:00:00Z",
                                             "to": "2026-11-03T00:00:00Z"})
    assert heatmap.status_code == 429
    # the other tenant is not blocked, nor the noisy tenant's light requests
    resp = _track(quiet)
    assert resp.status_code == 200 and len(resp.get_json()["features"]) == 1
    assert noisy.tenant.get("/v1/me").status_code == 200
    # one slot frees: the noisy tenant reads again
    held[0].rollback()
    assert _track(noisy).status_code == 200


def test_a_third_concurrent_read_is_refused_while_another_tenants_read_runs(
        config, make_tenant, make_tracked, superuser):
    """Real requests in flight: the noisy tenant's two reads hold its slots while they wait
    to append their audit entry (its audit chain is held here), a third is refused at once,
    the quiet tenant's read runs beside them; released, both noisy reads are answered."""
    app = create_app(replace(config, heavy_reads_per_tenant=2, heavy_reads_per_node=3))
    app.testing = True
    noisy = make_tracked(make_tenant("noisy"))
    quiet = make_tracked(make_tenant("quiet"))
    noisy.pings([ping()])
    quiet.pings([ping()])
    for tracked in (noisy, quiet):
        tracked.tenant.token_for("dispatcher")  # made now: its member's audit entry too
    chain = psycopg.connect(libpq_url(config.app_database_url))
    chain.execute("SELECT pg_advisory_xact_lock(hashtextextended('govern.audit:' || %s, 0))",
                  (str(noisy.tenant.tenant_id),))
    answers = []
    threads = [threading.Thread(target=lambda: answers.append(_track(noisy, app.test_client())))
               for _ in range(2)]
    try:
        for t in threads:
            t.start()
        _wait_for(lambda: superuser.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
            "AND wait_event_type = 'Lock' AND wait_event = 'advisory' "
            "AND query LIKE 'INSERT INTO audit_log%'"
        ).fetchone()[0] == 2)
        third = _track(noisy, app.test_client())
        assert third.status_code == 429, third.get_json()
        assert third.get_json()["error"] == {
            "code": "tenant_busy", "message": third.get_json()["error"]["message"],
            "details": {"heavy_reads_per_tenant": 2}}
        other = _track(quiet, app.test_client())
        assert other.status_code == 200 and len(other.get_json()["features"]) == 1
        assert noisy.tenant.get("/v1/me").status_code == 200
        assert answers == []  # the two are still in flight
    finally:
        chain.close()
        for t in threads:
            t.join(120)
    assert [a.status_code for a in answers] == [200, 200]
    assert _track(noisy, app.test_client()).status_code == 200
    app.extensions["govern"].engine.dispose()


def test_a_full_node_refuses_every_tenants_heavy_reads_but_not_light_ones(
        make_tenant, make_tracked, busy, config):
    a = make_tracked(make_tenant("a"))
    b = make_tracked(make_tenant("b"))
    a.pings([ping()])
    held = [busy(None, slot) for slot in range(config.heavy_node_slots)]
    for tracked in (a, b):
        refused = _track(tracked)
        assert refused.status_code == 429, refused.get_json()
        assert refused.get_json()["error"]["code"] == "server_busy"
        assert refused.get_json()["error"]["details"] == {
            "heavy_reads_per_node": config.heavy_node_slots}
        assert int(refused.headers["Retry-After"]) > 0
        assert tracked.tenant.get("/v1/me").status_code == 200
    # the refusal took no tenant slot with it
    for slot in range(config.heavy_reads_per_tenant):
        assert _free(config, HEAVY_LOCK_SPACE + slot, heavy_lock_key(a.tenant.tenant_id))
    held[-1].rollback()
    resp = _track(a)
    assert resp.status_code == 200 and len(resp.get_json()["features"]) == 1


def test_a_heavy_read_holds_its_slots_until_it_has_answered(config, make_tenant):
    """A read commits its audit entry before it answers, then builds the answer (10,000
    features of a track take longer than the query): the slots outlive that commit."""
    app = create_app(replace(config, heavy_reads_per_tenant=1, heavy_reads_per_node=1))
    app.testing = True
    tenant = make_tenant("a")
    seen = {}

    @app.route("/test/heavy-probe")
    @require_member()
    @heavy
    def probe():
        db().commit()  # as a read does with its audit entry
        seen["tenant"] = _free(config, HEAVY_LOCK_SPACE, heavy_lock_key(tenant.tenant_id))
        seen["node"] = _free(config, NODE_LOCK_SPACE, node_lock_key(config.heavy_node))
        return {"ok": True}

    assert app.test_client().get("/test/heavy-probe", headers=tenant.headers()).status_code == 200
    assert seen == {"tenant": False, "node": False}
    # and they are released with the request
    assert _free(config, HEAVY_LOCK_SPACE, heavy_lock_key(tenant.tenant_id))
    assert _free(config, NODE_LOCK_SPACE, node_lock_key(config.heavy_node))
    app.extensions["govern"].engine.dispose()


def test_slots_are_released_with_the_request(make_tenant, make_tracked):
    tracked = make_tracked(make_tenant("a"))
    statuses = [_track(tracked).status_code for _ in range(5)]
    assert statuses == [200] * 5
