"""foundation: tenants, members, tokens, audit log, app role and row-level security

Revision ID: 0001_foundation
Revises:
Create Date: 2026-11-21
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql as pg

from govern.config import APP_ROLE
from govern.rls import append_only, enable_tenant_rls, grant_app

revision = "0001_foundation"
down_revision = None
branch_labels = None
depends_on = None

TENANT_TABLES = ("tenants", "members", "subjects", "devices", "api_tokens", "audit_log")


def _ts(name, **kw):
    return sa.Column(name, sa.DateTime(timezone=True), **kw)


def upgrade() -> None:
    op.execute("CREATE EXTENSION IF NOT EXISTS postgis")
    op.execute(
        f"""
        DO $$ BEGIN
          IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{APP_ROLE}') THEN
            CREATE ROLE {APP_ROLE} LOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE;
          END IF;
        END $$
        """
    )
    op.execute(f"GRANT USAGE ON SCHEMA public TO {APP_ROLE}")
    op.execute(f"GRANT SELECT ON alembic_version TO {APP_ROLE}")
    op.execute(
        """
        CREATE FUNCTION govern_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
          RAISE EXCEPTION '% is append-only: % refused', TG_TABLE_NAME, TG_OP
            USING ERRCODE = 'insufficient_privilege';
        END $$
        """
    )

    op.create_table(
        "tenants",
        sa.Column("tenant_id", pg.UUID(as_uuid=True), primary_key=True),
        sa.Column("name", sa.String(200), nullable=False),
        _ts("created_at", nullable=False, server_default=sa.func.now()),
    )
    op.create_table(
        "members",
        sa.Column("tenant_id", pg.UUID(as_uuid=True), nullable=False),
        sa.Column("member_id", pg.UUID(as_uuid=True), nullable=False),
        sa.Column("email", sa.String(320), nullable=False),
        sa.Column("display_name", sa.String(200)),
        sa.Column("role", sa.String(20), nullable=False),
        _ts("created_at", nullable=False, server_default=sa.func.now()),
        _ts("removed_at"),
        sa.PrimaryKeyConstraint("tenant_id", "member_id"),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.tenant_id"], ondelete="CASCADE"),
        sa.CheckConstraint(
            "role IN ('owner', 'admin', 'analyst', 'dispatcher', 'auditor')",
            name="members_role_valid",
        ),
    )
    op.execute(
        "CREATE UNIQUE INDEX members_active_email ON members (tenant_id, lower(email)) "
        "WHERE removed_at IS NULL"
    )
    op.create_table(
        "subjects",
        sa.Column("tenant_id", pg.UUID(as_uuid=True), nullable=False),
        sa.Column("subject_id", pg.UUID(as_uuid=True), nullable=False),
        sa.Column("external_ref", sa.String(200), nullable=False),
        sa.Column("display_name", sa.String(200)),
        sa.Column("timezone", sa.String(64), nullable=False, server_default="UTC"),
        sa.Column("collection_windows", pg.JSONB),
        sa.Column("collection_blocked", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("blocked_reason", sa.Text),
        sa.Column("on_duty", sa.Boolean, nullable=False, server_default=sa.true()),
        _ts("duty_changed_at"),
        _ts("created_at", nullable=False, server_default=sa.func.now()),
        sa.PrimaryKeyConstraint("tenant_id", "subject_id"),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.tenant_id"], ondelete="CASCADE"),
        sa.UniqueConstraint("tenant_id", "external_ref", name="subjects_external_ref_unique"),
    )
    op.create_table(
        "devices",
        sa.Column("tenant_id", pg.UUID(as_uuid=True), nullable=False),
        sa.Column("device_id", pg.UUID(as_uuid=True), nullable=False),
        sa.Column("subject_id", pg.UUID(as_uuid=True), nullable=False),
        sa.Column("identifier", sa.String(100), nullable=False),
        sa.Column("name", sa.String(200)),
        sa.Column("platform", sa.String(40)),
        _ts("created_at", nullable=False, server_default=sa.func.now()),
        _ts("revoked_at"),
        _ts("last_seen_at"),
        sa.PrimaryKeyConstraint("tenant_id", "device_id"),
        sa.ForeignKeyConstraint(
            ["tenant_id", "subject_id"], ["subjects.tenant_id", "subjects.subject_id"]
        ),
        sa.UniqueConstraint("tenant_id", "identifier", name="devices_identifier_unique"),
    )
    op.create_index("devices_subject", "devices", ["tenant_id", "subject_id"])
    op.create_table(
        "api_tokens",
        sa.Column("tenant_id", pg.UUID(as_uuid=True), nullable=False),
        sa.Column("token_id", pg.UUID(as_uuid=True), nullable=False),
        sa.Column("kind", sa.String(10), nullable=False),
        sa.Column("member_id", pg.UUID(as_uuid=True)),
        sa.Column("device_id", pg.UUID(as_uuid=True)),
        sa.Column("name", sa.String(200), nullable=False, server_default=""),
        sa.Column("token_hash", sa.LargeBinary, nullable=False),
        sa.Column("hint", sa.String(16), nullable=False),
        _ts("created_at", nullable=False, server_default=sa.func.now()),
        _ts("expires_at"),
        _ts("revoked_at"),
        _ts("last_used_at"),
        sa.PrimaryKeyConstraint("tenant_id", "token_id"),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.tenant_id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(
            ["tenant_id", "member_id"], ["members.tenant_id", "members.member_id"]
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id", "device_id"], ["devices.tenant_id", "devices.device_id"]
        ),
        sa.UniqueConstraint("tenant_id", "token_hash", name="api_tokens_hash_unique"),
        sa.CheckConstraint("kind IN ('member', 'device')", name="api_tokens_kind_valid"),
        sa.CheckConstraint(
            "(kind = 'member' AND member_id IS NOT NULL AND device_id IS NULL)"
            " OR (kind = 'device' AND device_id IS NOT NULL AND member_id IS NULL)",
            name="api_tokens_owner_matches_kind",
        ),
    )
    op.create_table(
        "audit_log",
        sa.Column("tenant_id", pg.UUID(as_uuid=True), nullable=False),
        sa.Column("seq", sa.BigInteger, nullable=False),
        _ts("at", nullable=False, server_default=sa.func.now()),
        sa.Column("actor_kind", sa.String(10), nullable=False),
        sa.Column("actor_id", sa.Text),
        sa.Column("action", sa.String(80), nullable=False),
        sa.Column("target_type", sa.String(40)),
        sa.Column("target_id", sa.Text),
        sa.Column("subject_id", pg.UUID(as_uuid=True)),
        sa.Column("request_id", sa.String(100)),
        sa.Column("details", pg.JSONB, nullable=False, server_default="{}"),
        sa.Column("prev_hash", sa.LargeBinary, nullable=False),
        sa.Column("hash", sa.LargeBinary, nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", "seq"),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.tenant_id"], ondelete="CASCADE"),
    )
    op.create_index("audit_log_at", "audit_log", ["tenant_id", "at"])
    op.execute(
        "CREATE INDEX audit_log_subject ON audit_log (tenant_id, subject_id) "
        "WHERE subject_id IS NOT NULL"
    )
    # The chain: each entry's hash covers its content and the previous entry's hash.
    op.execute(
        """
        CREATE FUNCTION govern_audit_hash(e audit_log) RETURNS bytea
        LANGUAGE sql IMMUTABLE AS $$
          SELECT sha256(e.prev_hash || convert_to(format(
            '%s|%s|%s|%s|%s|%s|%s|%s|%s|%s|%s',
            e.tenant_id, e.seq,
            to_char(e.at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US'),
            quote_nullable(e.actor_kind), quote_nullable(e.actor_id),
            quote_nullable(e.action), quote_nullable(e.target_type),
            quote_nullable(e.target_id), quote_nullable(e.subject_id),
            quote_nullable(e.request_id), quote_nullable(e.details::text)
          ), 'UTF8'))
        $$
        """
    )
    op.execute(
        """
        CREATE FUNCTION govern_audit_chain() RETURNS trigger LANGUAGE plpgsql AS $$
        DECLARE
          last_seq bigint;
          last_hash bytea;
        BEGIN
          PERFORM pg_advisory_xact_lock(hashtextextended('govern.audit:' || NEW.tenant_id, 0));
          SELECT seq, hash INTO last_seq, last_hash FROM audit_log
            WHERE tenant_id = NEW.tenant_id ORDER BY seq DESC LIMIT 1;
          NEW.seq := COALESCE(last_seq, 0) + 1;
          NEW.prev_hash := COALESCE(last_hash, '\\x'::bytea);
          NEW.at := COALESCE(NEW.at, now());
          NEW.details := COALESCE(NEW.details, '{}'::jsonb);
          NEW.hash := govern_audit_hash(NEW);
          RETURN NEW;
        END $$
        """
    )
    op.execute(
        "CREATE TRIGGER audit_log_chain BEFORE INSERT ON audit_log "
        "FOR EACH ROW EXECUTE FUNCTION govern_audit_chain()"
    )

    for table in TENANT_TABLES:
        for stmt in enable_tenant_rls(table):
            op.execute(stmt)
    op.execute(grant_app("tenants", "SELECT, INSERT, UPDATE"))
    op.execute(grant_app("members"))
    op.execute(grant_app("api_tokens"))
    op.execute(grant_app("subjects"))
    op.execute(grant_app("devices"))
    op.execute(grant_app("audit_log", "SELECT, INSERT"))
    for stmt in append_only("audit_log"):
        op.execute(stmt)


def downgrade() -> None:
    for table in reversed(TENANT_TABLES):
        op.execute(f"DROP TABLE IF EXISTS {table} CASCADE")
    op.execute("DROP FUNCTION IF EXISTS govern_audit_chain()")
    op.execute("DROP FUNCTION IF EXISTS govern_refuse_change()")
    op.execute(f"REVOKE ALL ON alembic_version FROM {APP_ROLE}")
    op.execute(f"REVOKE USAGE ON SCHEMA public FROM {APP_ROLE}")
