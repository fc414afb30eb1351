"""One tenant's heavy reads cannot stall another's: each tenant holds at most
HEAVY_READS_PER_TENANT of them at once, across all web processes (advisory locks)."""

import psycopg
import pytest

from govern.config import libpq_url
from govern.hardening import HEAVY_LOCK_SPACE, heavy_lock_key
from tests.tracking import ping


@pytest.fixture
def busy(config):
    """Hold slots as a long read in another web process would: a transaction with the
    tenant's advisory lock taken, on its own connection as the app role."""
    conns = []

    def hold(tenant_id, slot):
        conn = psycopg.connect(libpq_url(config.app_database_url))
        conn.execute("SELECT pg_advisory_xact_lock(%s, %s)",
                     (HEAVY_LOCK_SPACE + slot, heavy_lock_key(tenant_id)))
        conns.append(conn)
        return conn

    yield hold
    for conn in conns:
        conn.close()


def _track(tracked):
    return tracked.tenant.get(f"/v1/subjects/{tracked.subject_id}/track",
                              token=tracked.tenant.token_for("dispatcher"),
                              query_string={"purpose": "navigation"})


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


def test_slots_are_released_with_the_request(make_tenant, make_tracked):
    tracked = make_tracked(make_tenant("a"))
    statuses = [_track(tracked).status_code for _ in range(5)]
    assert statuses == [200] * 5


def _slot_free(config, tenant_id, slot=0) -> bool:
    """Whether another web process could take the tenant's slot now (and give it back)."""
    with psycopg.connect(libpq_url(config.app_database_url)) as conn:
        return conn.execute("SELECT pg_try_advisory_xact_lock(%s, %s)",
                            (HEAVY_LOCK_SPACE + slot, heavy_lock_key(tenant_id))).fetchone()[0]


def test_the_slot_is_held_until_the_answer_is_built(config, make_tenant, make_tracked):
    """The read commits its audit entry before the answer is serialized (10,000 features of
    a long track take longer than the query); a slot released with that commit let every
    worker serialize one tenant's tracks at once. Probed from another connection after the
    answer is built (after_request), and again once the request is over."""
    from govern.app import create_app
    from govern.config import Config

    app = create_app(Config.from_env({"DATABASE_URL": config.database_url,
                                      "LOG_LEVEL": "WARNING", "RATE_LIMITS": "off",
                                      "HEAVY_READS_PER_TENANT": "1"}))
    probes = []

    @app.after_request
    def _probe(resp):
        probes.append(_slot_free(config, tracked.tenant.tenant_id))
        return resp

    tenant = make_tenant("held")
    tracked = make_tracked(tenant)
    tracked.pings([ping()])
    client = app.test_client()
    resp = client.get(f"/v1/subjects/{tracked.subject_id}/track",
                      headers={"Authorization": f"Bearer {tenant.token_for('dispatcher')}"},
                      query_string={"purpose": "navigation"})
    assert resp.status_code == 200 and len(resp.get_json()["features"]) == 1
    assert probes == [False], "the slot was free while the answer was still being built"
    assert _slot_free(config, tenant.tenant_id), "the slot outlived its request"
    app.extensions["govern"].engine.dispose()
