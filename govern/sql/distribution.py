"""Distributing the schema on a Citus coordinator (`govern db distribute`).

Every table with a `tenant_id` column is distributed by it, co-located with `tenants`, so
one tenant's rows of every table live on one shard group and a statement that names its
tenant routes to one worker. The OsmAnd routing table (`device_routes`: identifier →
tenant, read before the tenant is known) is a reference table, a copy on every node.
PostGIS's `spatial_ref_sys` and `alembic_version` stay local to the coordinator: making
`spatial_ref_sys` a reference table breaks geography on the workers, and the workers have
PostGIS's own copy from `CREATE EXTENSION postgis`.

What Citus refuses, and what is done about it:

- tables with triggers need `citus.enable_unsafe_triggers`: the triggers that remain
  (append-only refusals, the audit chain, which reads only its own tenant's rows on its own
  shard) are safe per shard; it is set for the database so later migrations can add more;
- foreign keys that include the distribution column with `ON DELETE SET NULL (col)`
  (`stops`/`trips` → `sites`) are re-created without the action; the application clears
  those references itself before it deletes a site (govern/domain/sites.py);
- the tenant scope is set with `SET LOCAL`, which reaches the workers only with
  `citus.propagate_set_commands = 'local'`: set for the database here.

Idempotent: tables already distributed are left alone, so the command can run after every
migration. On plain PostgreSQL it changes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import text
from sqlalchemy.engine import Connection

ANCHOR = "tenants"
REFERENCE_TABLES = ("device_routes",)
LOCAL_TABLES = ("alembic_version", "spatial_ref_sys")


class DistributionError(RuntimeError):
    """The schema cannot be distributed as it stands (the message says what to change)."""


@dataclass
class Plan:
    citus: bool
    distributed: list[str] = field(default_factory=list)
    reference: list[str] = field(default_factory=list)
    local: list[str] = field(default_factory=list)
    newly_distributed: list[str] = field(default_factory=list)
    newly_reference: list[str] = field(default_factory=list)
    foreign_keys_changed: list[str] = field(default_factory=list)
    functions_propagated: list[str] = field(default_factory=list)


def is_citus_coordinator(conn: Connection) -> bool:
    if not conn.scalar(text("SELECT 1 FROM pg_extension WHERE extname = 'citus'")):
        return False
    return bool(conn.scalar(text("SELECT citus_is_coordinator()")))


def _tables(conn: Connection) -> dict[str, bool]:
    """Every table of the public schema (partitions excluded) → whether it has tenant_id."""
    rows = conn.execute(text(
        """
        SELECT c.relname, EXISTS (
                 SELECT 1 FROM pg_attribute a WHERE a.attrelid = c.oid
                 AND a.attname = 'tenant_id' AND NOT a.attisdropped) AS tenant
        FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p') AND NOT c.relispartition
          AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.objid = c.oid
                          AND d.deptype = 'e')
        ORDER BY c.relname
        """))
    return {r.relname: r.tenant for r in rows}


def _citus_kind(conn: Connection) -> dict[str, str]:
    """Tables Citus already manages → 'h' (distributed) or 'n' (reference)."""
    rows = conn.execute(text(
        "SELECT logicalrelid::regclass::text AS tbl, partmethod::text AS partmethod "
        "FROM pg_dist_partition"))
    return {r.tbl: r.partmethod for r in rows}


def _strip_delete_action(definition: str) -> str:
    import re

    return re.sub(r"\s+ON DELETE SET (NULL|DEFAULT)(\s*\([^)]*\))?", "", definition)


def plan(conn: Connection) -> Plan:
    """What the schema would look like distributed (and the refusals), without changes."""
    if not is_citus_coordinator(conn):
        return Plan(citus=False)
    tables = _tables(conn)
    missing = [t for t in (ANCHOR, *REFERENCE_TABLES) if t not in tables]
    if missing:
        raise DistributionError(
            f"tables missing: {', '.join(missing)}; run `govern db upgrade` first")
    unknown = [t for t, tenant in tables.items()
               if not tenant and t not in REFERENCE_TABLES and t not in LOCAL_TABLES]
    if unknown:
        raise DistributionError(
            f"tables without tenant_id that are neither reference nor local: "
            f"{', '.join(unknown)}; give them tenant_id or list them in govern/sql/distribution.py")
    result = Plan(citus=True)
    for t, tenant in tables.items():
        if t in REFERENCE_TABLES:
            result.reference.append(t)
        elif t in LOCAL_TABLES:
            result.local.append(t)
        elif tenant:
            result.distributed.append(t)
    result.local += [t for t in LOCAL_TABLES if t not in tables]
    result.distributed.sort(key=lambda t: (t != ANCHOR, t))
    return result


def distribute(conn: Connection, *, shard_count: int | None = None) -> Plan:
    """Distribute the schema (see the module's docstring); returns what was done."""
    result = plan(conn)
    if not result.citus:
        return result
    dbname = conn.scalar(text("SELECT current_database()"))
    for setting, value in (("citus.propagate_set_commands", "local"),
                           ("citus.enable_unsafe_triggers", "on")):
        conn.execute(text(f'ALTER DATABASE "{dbname}" SET {setting} = \'{value}\''))
        conn.execute(text(f"SET {setting} = '{value}'"))
    if shard_count:
        conn.execute(text(f"SET citus.shard_count = {int(shard_count)}"))
    # one connection per worker for the DDL that follows (create_distributed_table
    # inside a transaction that already changed other distributed tables)
    conn.execute(text("SET LOCAL citus.multi_shard_modify_mode = 'sequential'"))
    kinds = _citus_kind(conn)

    pending = [t for t in result.distributed if kinds.get(t) != "h"]
    # Foreign keys between tables that are not yet distributed: dropped, and re-added once
    # both ends are distributed (Citus cannot distribute a table a local table references).
    fks = list(conn.execute(text(
        """
        SELECT c.conrelid::regclass::text AS tbl, c.conname, pg_get_constraintdef(c.oid) AS d
        FROM pg_constraint c JOIN pg_namespace n ON n.oid = c.connamespace
        WHERE n.nspname = 'public' AND c.contype = 'f'
          AND (c.conrelid::regclass::text = ANY(:p) OR c.confrelid::regclass::text = ANY(:p))
        ORDER BY 1, 2
        """), {"p": pending + [t for t in result.reference if kinds.get(t) != "n"]}))
    for fk in fks:
        conn.execute(text(f'ALTER TABLE {fk.tbl} DROP CONSTRAINT "{fk.conname}"'))

    for t in result.reference:
        if kinds.get(t) != "n":
            conn.execute(text("SELECT create_reference_table(:t)"), {"t": t})
            result.newly_reference.append(t)
    for t in pending:
        if t == ANCHOR:
            conn.execute(text("SELECT create_distributed_table(:t, 'tenant_id')"), {"t": t})
        else:
            conn.execute(text("SELECT create_distributed_table(:t, 'tenant_id', "
                              "colocate_with => :a)"), {"t": t, "a": ANCHOR})
        result.newly_distributed.append(t)
    for fk in fks:
        # Citus refuses ON DELETE SET NULL/SET DEFAULT when the key includes tenant_id
        definition = _strip_delete_action(fk.d)
        if definition != fk.d:
            result.foreign_keys_changed.append(f"{fk.tbl}.{fk.conname}")
        conn.execute(text(f'ALTER TABLE {fk.tbl} ADD CONSTRAINT "{fk.conname}" {definition}'))

    # the project's functions (triggers' helpers, SECURITY DEFINER entry points) on every
    # node: the audit trigger calls govern_audit_hash on the shard
    funcs = conn.execute(text(
        """
        SELECT p.oid::regprocedure::text AS f FROM pg_proc p
        JOIN pg_namespace n ON n.oid = p.pronamespace
        WHERE n.nspname = 'public' AND p.proname LIKE 'govern\\_%'
          AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.objid = p.oid AND d.deptype = 'e')
          AND NOT EXISTS (SELECT 1 FROM pg_dist_object o
                          WHERE o.classid = 'pg_proc'::regclass AND o.objid = p.oid)
        ORDER BY 1
        """)).scalars().all()
    for f in funcs:
        conn.execute(text("SELECT create_distributed_function(:f)"), {"f": f})
        result.functions_propagated.append(f)
    return result
