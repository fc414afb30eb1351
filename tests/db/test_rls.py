"""Row-level security: the app role sees one tenant's rows, whatever SQL it runs."""

import psycopg
import pytest
from sqlalchemy import text

from govern.config import app_url_from, libpq_url
from govern.db import make_engine, make_sessionmaker, tenant_session
from govern.domain.tenants import create_tenant

ROUTING_TABLES = {"device_routes"}
TENANT_TABLES = ["tenants", "members", "subjects", "devices", "api_tokens", "audit_log"]


@pytest.fixture
def two_tenants(sessions):
    with tenant_session(sessions, None) as s:
        a = create_tenant(s, "a")
    with tenant_session(sessions, None) as s:
        b = create_tenant(s, "b")
    return a, b


def test_raw_sql_without_filter_sees_only_current_tenant(sessions, two_tenants):
    a, b = two_tenants
    with tenant_session(sessions, a.tenant_id) as s:
        ids = {r[0] for r in s.execute(text("SELECT tenant_id FROM members"))}
        assert ids == {a.tenant_id}
        assert s.execute(text("SELECT count(*) FROM tenants")).scalar() == 1
        assert s.execute(text("SELECT count(*) FROM api_tokens")).scalar() == 1
        assert {r[0] for r in s.execute(text("SELECT tenant_id FROM audit_log"))} == {a.tenant_id}


def test_no_tenant_set_sees_nothing(sessions, two_tenants):
    with tenant_session(sessions, None) as s:
        for table in TENANT_TABLES:
            assert s.execute(text(f"SELECT count(*) FROM {table}")).scalar() == 0, table


def test_cannot_write_into_another_tenant(sessions, two_tenants):
    a, b = two_tenants
    with pytest.raises(Exception, match="row-level security"):
        with tenant_session(sessions, a.tenant_id) as s:
            s.execute(text("INSERT INTO members (tenant_id, member_id, email, role) "
                           "VALUES (:t, gen_random_uuid(), 'x@y.z', 'analyst')"),
                      {"t": b.tenant_id})


def test_update_and_delete_cannot_reach_another_tenant(sessions, two_tenants):
    a, b = two_tenants
    with tenant_session(sessions, a.tenant_id) as s:
        assert s.execute(text("UPDATE members SET display_name = 'x'")).rowcount == 1
        assert s.execute(text("DELETE FROM api_tokens WHERE tenant_id = :b"),
                         {"b": b.tenant_id}).rowcount == 0
    with tenant_session(sessions, b.tenant_id) as s:
        assert s.execute(text("SELECT count(*) FROM api_tokens")).scalar() == 1


def test_pooled_connection_reused_by_other_tenant_sees_nothing_of_the_first(config, two_tenants):
    a, b = two_tenants
    engine = make_engine(config.app_database_url, pool_size=1)
    engine.pool._max_overflow = 0
    factory = make_sessionmaker(engine)
    with tenant_session(factory, a.tenant_id) as s:
        pid_a = s.execute(text("SELECT pg_backend_pid()")).scalar()
        assert s.execute(text("SELECT count(*) FROM members")).scalar() == 1
    with tenant_session(factory, b.tenant_id) as s:
        assert s.execute(text("SELECT pg_backend_pid()")).scalar() == pid_a  # same connection
        rows = s.execute(text("SELECT tenant_id FROM members")).all()
        assert {r[0] for r in rows} == {b.tenant_id}
    with tenant_session(factory, None) as s:
        assert s.execute(text("SELECT pg_backend_pid()")).scalar() == pid_a
        assert s.execute(text("SELECT count(*) FROM members")).scalar() == 0
        assert s.execute(text("SELECT current_setting('govern.tenant_id', true)")).scalar() == ""
    engine.dispose()


def test_app_role_is_not_privileged(config):
    with psycopg.connect(libpq_url(config.app_database_url)) as conn:
        row = conn.execute(
            "SELECT rolsuper, rolbypassrls FROM pg_roles WHERE rolname = current_user"
        ).fetchone()
        assert row == (False, False)
        owned = conn.execute(
            "SELECT count(*) FROM pg_tables WHERE schemaname = 'public' "
            "AND tableowner = current_user"
        ).fetchone()[0]
        assert owned == 0


def test_every_tenant_table_has_forced_rls(superuser):
    rows = superuser.execute(
        "SELECT c.relname, c.relrowsecurity, c.relforcerowsecurity FROM pg_class c "
        "JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p') "
        "AND EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = c.oid "
        "            AND a.attname = 'tenant_id' AND NOT a.attisdropped) "
        "AND NOT c.relispartition"
    ).fetchall()
    assert rows, "no tenant tables found"
    for name, enabled, forced in rows:
        if name in ROUTING_TABLES:
            continue
        assert enabled and forced, name


def test_routing_tables_are_closed_to_the_app_role(config, superuser):
    """device_routes maps an OsmAnd identifier to its tenant; the app may only ask one
    identifier at a time through a function, never list the table."""
    with psycopg.connect(libpq_url(config.app_database_url)) as conn:
        for table in ROUTING_TABLES:
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                conn.execute(f"SELECT * FROM {table}")
            conn.rollback()


def test_app_url_swaps_the_user():
    assert app_url_from("postgresql://postgres:pw@db:5432/govern") == \
        "postgresql://govern_app@db:5432/govern"
