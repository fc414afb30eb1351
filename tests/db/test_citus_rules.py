"""The live schema keeps Citus's rules, so every tenant table can be distributed by
tenant_id: every primary key, unique constraint or index, and foreign key of a tenant table
includes tenant_id; no foreign key points from a shared table to a tenant table."""

ROUTING_TABLES = {"device_routes"}  # identifier -> tenant: a reference table under Citus

TENANT_TABLES_SQL = """
SELECT c.oid::regclass::text FROM pg_class c
JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p') AND NOT c.relispartition
  AND EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = c.oid
              AND a.attname = 'tenant_id' AND NOT a.attisdropped)
"""


def tenant_tables(conn):
    return {r[0] for r in conn.execute(TENANT_TABLES_SQL)} - ROUTING_TABLES


def test_there_are_tenant_tables(superuser):
    assert {"pings", "members", "consent_events", "audit_log", "rollups"} <= tenant_tables(
        superuser)


def test_every_unique_index_of_a_tenant_table_includes_tenant_id(superuser):
    rows = superuser.execute("""
        SELECT i.indrelid::regclass::text, i.indexrelid::regclass::text,
               bool_or(a.attname = 'tenant_id')
        FROM pg_index i
        JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey)
        WHERE i.indisunique
        GROUP BY 1, 2
    """).fetchall()
    tables = tenant_tables(superuser)
    offenders = [(t, idx) for t, idx, has in rows if t in tables and not has]
    assert offenders == []


def test_every_foreign_key_of_a_tenant_table_includes_tenant_id(superuser):
    rows = superuser.execute("""
        SELECT con.conrelid::regclass::text, con.conname, con.confrelid::regclass::text,
               EXISTS (SELECT 1 FROM unnest(con.conkey) k
                       JOIN pg_attribute a ON a.attrelid = con.conrelid AND a.attnum = k
                       WHERE a.attname = 'tenant_id')
        FROM pg_constraint con WHERE con.contype = 'f'
    """).fetchall()
    tables = tenant_tables(superuser)
    missing = [(t, name) for t, name, _ref, has in rows if t in tables and not has]
    assert missing == []
    shared_to_tenant = [(t, name) for t, name, ref, _ in rows
                        if t not in tables and ref in tables]
    assert shared_to_tenant == []


def test_every_tenant_table_has_a_primary_key(superuser):
    tables = tenant_tables(superuser)
    with_pk = {r[0] for r in superuser.execute(
        "SELECT conrelid::regclass::text FROM pg_constraint WHERE contype = 'p'")}
    assert tables - with_pk == set()
