"""SQL that migrations use to put a table under tenant row-level security.

Kept in one place so every tenant table gets exactly the same policy.
"""

from __future__ import annotations

from govern.config import APP_ROLE

CURRENT_TENANT = "NULLIF(current_setting('govern.tenant_id', true), '')::uuid"


def enable_tenant_rls(table: str, column: str = "tenant_id") -> list[str]:
    return [
        f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY",
        f"ALTER TABLE {table} FORCE ROW LEVEL SECURITY",
        f"CREATE POLICY tenant_isolation ON {table} "
        f"USING ({column} = {CURRENT_TENANT}) WITH CHECK ({column} = {CURRENT_TENANT})",
    ]


def grant_app(table: str, privileges: str = "SELECT, INSERT, UPDATE, DELETE") -> str:
    return f"GRANT {privileges} ON {table} TO {APP_ROLE}"


def append_only(table: str) -> list[str]:
    """Refuse UPDATE and DELETE in the database itself, for every role that is not the owner
    bypassing triggers, and revoke the privileges from the app role too."""
    return [
        f"REVOKE UPDATE, DELETE, TRUNCATE ON {table} FROM {APP_ROLE}",
        f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table} "
        "FOR EACH ROW EXECUTE FUNCTION govern_refuse_change()",
    ]


def owner_maintenance(table: str) -> str:
    """Let the schema owner (the migrating role: scheduler maintenance jobs, never the app)
    read across tenants under FORCE RLS, so jobs that drop whole partitions see every
    tenant's windows and holds even when the owner is not a superuser."""
    return (f"CREATE POLICY owner_maintenance ON {table} FOR SELECT TO CURRENT_USER "
            "USING (true)")
