"""policy: purposes, consent ledger, versioned tenant policy, privacy zones, device routes

Revision ID: 0002_policy
Revises: 0001_foundation
Create Date: 2026-11-21
"""

import sqlalchemy as sa
from alembic import op
from geoalchemy2 import Geometry
from sqlalchemy.dialects import postgresql as pg

from govern.config import APP_ROLE
from govern.rls import enable_tenant_rls, grant_app

revision = "0002_policy"
down_revision = "0001_foundation"
branch_labels = None
depends_on = None

TENANT_TABLES = ("purposes", "consent_events", "policy_versions", "zones")


def _ts(name, **kw):
    return sa.Column(name, sa.DateTime(timezone=True), **kw)


def _uuid(name, **kw):
    return sa.Column(name, pg.UUID(as_uuid=True), **kw)


def upgrade() -> None:
    op.create_table(
        "purposes",
        _uuid("tenant_id", nullable=False),
        _uuid("purpose_id", nullable=False),
        sa.Column("bit", sa.SmallInteger, nullable=False),
        sa.Column("key", sa.String(64), nullable=False),
        sa.Column("title", sa.String(200), nullable=False),
        sa.Column("description", sa.Text, nullable=False, server_default=""),
        sa.Column("requires_consent", sa.Boolean, nullable=False, server_default=sa.true()),
        sa.Column("precision_m", sa.Integer, nullable=False),
        sa.Column("retention_days", sa.Integer, nullable=False),
        sa.Column("individual_access", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("aggregate_use", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("reader_roles", pg.ARRAY(sa.String(20)), nullable=False, server_default="{}"),
        _ts("created_at", nullable=False, server_default=sa.func.now()),
        _ts("updated_at", nullable=False, server_default=sa.func.now()),
        _ts("archived_at"),
        sa.PrimaryKeyConstraint("tenant_id", "purpose_id"),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.tenant_id"], ondelete="CASCADE"),
        sa.UniqueConstraint("tenant_id", "key", name="purposes_key_unique"),
        sa.UniqueConstraint("tenant_id", "bit", name="purposes_bit_unique"),
        sa.CheckConstraint("bit BETWEEN 0 AND 62", name="purposes_bit_range"),
        sa.CheckConstraint("precision_m >= 1", name="purposes_precision_positive"),
        sa.CheckConstraint("retention_days > 0", name="purposes_retention_positive"),
    )
    op.create_table(
        "consent_events",
        _uuid("tenant_id", nullable=False),
        _uuid("event_id", nullable=False),
        sa.Column("seq", sa.BigInteger, sa.Identity(always=True), nullable=False),
        _uuid("subject_id", nullable=False),
        _uuid("purpose_id", nullable=False),
        sa.Column("status", sa.String(10), nullable=False),
        _ts("at", nullable=False),
        _ts("recorded_at", nullable=False, server_default=sa.func.now()),
        sa.Column("policy_version", sa.String(100), nullable=False),
        sa.Column("source", sa.String(10), nullable=False),
        sa.Column("actor_id", sa.Text, nullable=False),
        sa.Column("evidence", pg.JSONB, nullable=False, server_default="{}"),
        sa.PrimaryKeyConstraint("tenant_id", "event_id"),
        sa.ForeignKeyConstraint(
            ["tenant_id", "subject_id"], ["subjects.tenant_id", "subjects.subject_id"]
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id", "purpose_id"], ["purposes.tenant_id", "purposes.purpose_id"]
        ),
        sa.CheckConstraint("status IN ('granted', 'withdrawn')", name="consent_status_valid"),
        sa.CheckConstraint("source IN ('admin', 'device')", name="consent_source_valid"),
    )
    op.create_index("consent_events_lookup", "consent_events",
                    ["tenant_id", "subject_id", "purpose_id", "at", "seq"])
    op.create_table(
        "policy_versions",
        _uuid("tenant_id", nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("policy", pg.JSONB, nullable=False),
        sa.Column("changed", pg.JSONB, nullable=False, server_default="[]"),
        _ts("created_at", nullable=False, server_default=sa.func.now()),
        sa.Column("created_by", sa.Text, nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", "version"),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.tenant_id"], ondelete="CASCADE"),
    )
    op.create_table(
        "zones",
        _uuid("tenant_id", nullable=False),
        _uuid("zone_id", nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        _uuid("subject_id"),
        sa.Column("geometry", pg.JSONB, nullable=False),
        sa.Column("radius_m", sa.Float),
        sa.Column("area", Geometry("MULTIPOLYGON", srid=4326, spatial_index=False),
                  nullable=False),
        _ts("created_at", nullable=False, server_default=sa.func.now()),
        sa.Column("created_by", sa.Text, nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", "zone_id"),
        sa.ForeignKeyConstraint(
            ["tenant_id", "subject_id"], ["subjects.tenant_id", "subjects.subject_id"]
        ),
    )
    op.execute("CREATE INDEX zones_area ON zones USING gist (area)")

    # Ledger and policy history are append-only for the app role.
    op.execute(
        f"""
        CREATE FUNCTION govern_refuse_app_change() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
          IF current_user = '{APP_ROLE}' THEN
            RAISE EXCEPTION '% is append-only: % refused', TG_TABLE_NAME, TG_OP
              USING ERRCODE = 'insufficient_privilege';
          END IF;
          RETURN CASE WHEN TG_OP = 'DELETE' THEN OLD ELSE NEW END;
        END $$
        """
    )
    for table in ("consent_events", "policy_versions"):
        op.execute(
            f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table} "
            "FOR EACH ROW EXECUTE FUNCTION govern_refuse_app_change()"
        )

    # Routing for protocols that name a device but carry no tenant (OsmAnd): a table the
    # app role cannot read, maintained by a trigger, looked up one identifier at a time.
    op.create_table(
        "device_routes",
        sa.Column("identifier", sa.String(100), primary_key=True),
        _uuid("tenant_id", nullable=False),
        _uuid("device_id", nullable=False),
    )
    op.execute("REVOKE ALL ON device_routes FROM PUBLIC")
    op.execute(
        """
        CREATE FUNCTION govern_sync_device_route() RETURNS trigger
        LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
        BEGIN
          IF TG_OP = 'INSERT' THEN
            IF NEW.revoked_at IS NULL THEN
              INSERT INTO device_routes (identifier, tenant_id, device_id)
              VALUES (NEW.identifier, NEW.tenant_id, NEW.device_id);
            END IF;
          ELSIF TG_OP = 'UPDATE' THEN
            IF NEW.revoked_at IS NOT NULL AND OLD.revoked_at IS NULL THEN
              DELETE FROM device_routes WHERE identifier = OLD.identifier
                AND tenant_id = OLD.tenant_id AND device_id = OLD.device_id;
            END IF;
          ELSIF TG_OP = 'DELETE' THEN
            DELETE FROM device_routes WHERE identifier = OLD.identifier
              AND tenant_id = OLD.tenant_id AND device_id = OLD.device_id;
          END IF;
          RETURN NULL;
        END $$
        """
    )
    op.execute(
        "CREATE TRIGGER devices_route AFTER INSERT OR UPDATE OR DELETE ON devices "
        "FOR EACH ROW EXECUTE FUNCTION govern_sync_device_route()"
    )
    op.execute(
        """
        CREATE FUNCTION govern_device_route(p_identifier text)
        RETURNS TABLE (tenant_id uuid, device_id uuid)
        LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
          SELECT r.tenant_id, r.device_id FROM device_routes r WHERE r.identifier = p_identifier
        $$
        """
    )
    op.execute("REVOKE ALL ON FUNCTION govern_device_route(text) FROM PUBLIC")
    op.execute(f"GRANT EXECUTE ON FUNCTION govern_device_route(text) TO {APP_ROLE}")

    for table in TENANT_TABLES:
        for stmt in enable_tenant_rls(table):
            op.execute(stmt)
    op.execute(grant_app("purposes"))
    op.execute(grant_app("zones"))
    op.execute(grant_app("consent_events", "SELECT, INSERT"))
    op.execute(grant_app("policy_versions", "SELECT, INSERT"))


def downgrade() -> None:
    op.execute("DROP TRIGGER IF EXISTS devices_route ON devices")
    op.execute("DROP FUNCTION IF EXISTS govern_device_route(text)")
    op.execute("DROP FUNCTION IF EXISTS govern_sync_device_route()")
    op.execute("DROP TABLE IF EXISTS device_routes")
    for table in ("zones", "policy_versions", "consent_events", "purposes"):
        op.execute(f"DROP TABLE IF EXISTS {table} CASCADE")
    op.execute("DROP FUNCTION IF EXISTS govern_refuse_app_change()")
