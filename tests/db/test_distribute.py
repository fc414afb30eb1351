"""`govern db distribute`: on plain PostgreSQL it says so and changes nothing; on the Citus
cluster (`make test-citus`) the schema is distributed as docs/scaling.md says."""

import pytest
from click.testing import CliRunner

from govern import cli
from tests.conftest import CITUS


def _schema(superuser) -> list:
    return superuser.execute(
        "SELECT c.relname, c.relkind, pg_get_constraintdef(k.oid) FROM pg_class c "
        "JOIN pg_namespace n ON n.oid = c.relnamespace "
        "LEFT JOIN pg_constraint k ON k.conrelid = c.oid "
        "WHERE n.nspname = 'public' ORDER BY 1, 3").fetchall()


@pytest.mark.skipif(CITUS, reason="plain PostgreSQL only")
def test_on_plain_postgresql_it_says_so_and_changes_nothing(database_url, superuser,
                                                            monkeypatch):
    monkeypatch.setenv("DATABASE_URL", database_url)
    before = _schema(superuser)
    settings = superuser.execute("SELECT count(*) FROM pg_db_role_setting").fetchone()
    result = CliRunner().invoke(cli.main, ["db", "distribute"])
    assert result.exit_code == 0, result.output
    assert "not a Citus coordinator" in result.output
    assert _schema(superuser) == before
    assert superuser.execute("SELECT count(*) FROM pg_db_role_setting").fetchone() == settings


@pytest.mark.skipif(not CITUS, reason="needs the Citus cluster (make test-citus)")
def test_on_citus_every_tenant_table_is_distributed_and_a_second_run_changes_nothing(
        database_url, superuser, monkeypatch):
    monkeypatch.setenv("DATABASE_URL", database_url)
    kinds = dict(superuser.execute(
        "SELECT logicalrelid::regclass::text, partmethod::text FROM pg_dist_partition "
        "WHERE NOT EXISTS (SELECT 1 FROM pg_inherits i WHERE i.inhrelid = logicalrelid)"
    ).fetchall())
    tenant_tables = {r[0] for r in superuser.execute(
        "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
        "JOIN pg_attribute a ON a.attrelid = c.oid AND a.attname = 'tenant_id' "
        "WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p') AND NOT c.relispartition "
        "AND c.relname <> 'device_routes'")}
    assert {t for t, k in kinds.items() if k == "h"} == tenant_tables
    assert kinds["device_routes"] == "n"
    assert "spatial_ref_sys" not in kinds and "alembic_version" not in kinds
    colocation = superuser.execute(
        "SELECT count(DISTINCT colocationid) FROM pg_dist_partition WHERE partmethod = 'h'"
    ).fetchone()[0]
    assert colocation == 1
    before = _schema(superuser)
    result = CliRunner().invoke(cli.main, ["db", "distribute"])
    assert result.exit_code == 0, result.output
    assert "already done" in result.output
    assert _schema(superuser) == before


@pytest.mark.skipif(not CITUS, reason="needs the Citus cluster (make test-citus)")
def test_migrations_after_distribution_apply_and_the_next_run_distributes_what_they_add(
        database_url):
    """An operator distributes, then upgrades: the migrations since (0016 adds a tenant
    table, 0018 drops two distributed ones) apply to the distributed schema, and the next
    `govern db distribute` distributes the new table; tenants can then be created."""
    import uuid

    import psycopg

    from govern import migrate
    from govern.db import make_engine, make_sessionmaker, tenant_session
    from govern.domain.tenants import create_tenant
    from govern.sql.distribution import distribute
    from tests.conftest import CITUS_TEST_SHARDS, CLUSTER

    cluster = CLUSTER["citus"]
    name = f"govern_migr_{uuid.uuid4().hex[:8]}"
    url = cluster.ensure_database(name)
    try:
        migrate.upgrade(url, "0015_release_ledger")
        engine = make_engine(url, pool_size=1)
        with engine.begin() as conn:
            assert distribute(conn, shard_count=CITUS_TEST_SHARDS).citus
        migrate.upgrade(url)
        with engine.begin() as conn:
            distribute(conn, shard_count=CITUS_TEST_SHARDS)
        with psycopg.connect(url) as conn:
            kinds = dict(conn.execute(
                "SELECT logicalrelid::regclass::text, partmethod::text FROM pg_dist_partition"
            ).fetchall())
            rev = conn.execute("SELECT version_num FROM alembic_version").fetchone()[0]
        assert rev == migrate.head_revision()
        assert kinds.get("dp_person_day_budget") == "h"
        assert "rollup_periods" not in kinds
        with tenant_session(make_sessionmaker(engine), None) as s:
            assert create_tenant(s, "after-upgrade").tenant_id
        engine.dispose()
    finally:
        cluster.drop_database(name)
