"""Operating the cluster (Citus tier only, `make test-citus`): a worker added to a running,
distributed database takes shards after `citus_rebalance_start`, and a tenant's data and
routing survive the move (docs/scaling.md, operating the cluster)."""

from __future__ import annotations

import uuid

import psycopg
import pytest

from tests.conftest import CITUS, CITUS_TEST_SHARDS, CLUSTER, ROOT

pytestmark = pytest.mark.skipif(not CITUS, reason="needs the Citus cluster (make test-citus)")


def _placements(conn) -> dict[str, int]:
    """Placements of the tenant tables' shards by node (a reference table has a copy on
    every node, the new one included)."""
    return dict(conn.execute(
        "SELECT p.nodename || ':' || p.nodeport, count(*) FROM pg_dist_shard_placement p "
        "JOIN pg_dist_shard s USING (shardid) JOIN pg_dist_partition d USING (logicalrelid) "
        "WHERE d.partmethod = 'h' GROUP BY 1").fetchall())


def test_an_added_worker_takes_shards_and_every_tenant_keeps_its_rows_and_one_shard(
        database_url):
    from govern import migrate
    from govern.db import make_engine, make_sessionmaker, tenant_session
    from govern.domain.tenants import create_tenant
    from govern.localdb import FAST_SETTINGS, CitusCluster
    from govern.sql.distribution import distribute

    cluster = CLUSTER["citus"]
    # the suite's cluster with one node more; the new node joins only this test's database
    # (pg_dist_node is per database), so the suite's own database is not touched
    extra = CitusCluster(ROOT / "var" / "citus", workers=cluster.workers + 1,
                         settings=FAST_SETTINGS).nodes()[-1]
    extra.start()
    name = f"govern_ops_{uuid.uuid4().hex[:8]}"
    url = cluster.ensure_database(name)
    try:
        migrate.upgrade(url)
        engine = make_engine(url, pool_size=1)
        with engine.begin() as conn:
            distribute(conn, shard_count=CITUS_TEST_SHARDS)
        sessions = make_sessionmaker(engine)
        tenants = []
        for n in range(6):
            with tenant_session(sessions, None) as s:
                tenants.append(create_tenant(s, f"ops-{n}").tenant_id)
        with psycopg.connect(url, autocommit=True) as conn:
            before = _placements(conn)
            audit_before = dict(conn.execute(
                "SELECT tenant_id, count(*) FROM audit_log GROUP BY 1").fetchall())
            extra.ensure_database(name)
            with psycopg.connect(extra.url(name), autocommit=True) as node:
                for ext in ("citus", "postgis", "hll"):
                    node.execute(f"CREATE EXTENSION IF NOT EXISTS {ext}")
            new_node = f"{extra.sockdir}:{extra.port}"
            conn.execute("SELECT citus_add_node(%s, %s)", (str(extra.sockdir), extra.port))
            assert new_node not in before
            conn.execute("SELECT citus_rebalance_start(shard_transfer_mode => 'block_writes')")
            conn.execute("SELECT citus_rebalance_wait()")
            after = _placements(conn)
            assert after.get(new_node, 0) > 0, after
            assert sum(after.values()) == sum(before.values())
            audit_after = dict(conn.execute(
                "SELECT tenant_id, count(*) FROM audit_log GROUP BY 1").fetchall())
            assert audit_after == audit_before
            for tid in tenants:  # each tenant's statement still reaches one shard
                plan = conn.execute(
                    "EXPLAIN (FORMAT JSON) SELECT count(*) FROM audit_log WHERE tenant_id = %s",
                    (tid,)).fetchone()[0]
                assert '"Task Count": 1' in str(plan).replace("'", '"'), plan
        with tenant_session(sessions, None) as s:  # and writes go on after the move
            assert create_tenant(s, "ops-after").tenant_id
        engine.dispose()
    finally:
        cluster.drop_database(name)
        with psycopg.connect(extra.url("postgres"), autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        extra.stop("fast")
