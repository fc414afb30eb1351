"""citus shards: what the triggers need to run on a shard of a Citus worker

- `govern_audit_hash(record)`: on a worker the audit trigger fires on a shard
  (`audit_log_102028`), whose row type is not `audit_log`, so `govern_audit_hash(NEW)` found
  no function. The record overload computes the same hash from the same fields; on
  PostgreSQL (and on the coordinator) the `audit_log` version is still the one chosen, so
  nothing changes there. `audit verify` calls it the same way on the shards.

Revision ID: 0016_citus_shards
Revises: 0015_release_ledger
Create Date: 2026-12-02
"""

from alembic import op

revision = "0016_citus_shards"
down_revision = "0015_release_ledger"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        CREATE FUNCTION govern_audit_hash(e record) RETURNS bytea
        LANGUAGE plpgsql IMMUTABLE AS $$
        BEGIN
          RETURN sha256(e.prev_hash || convert_to(format(
            '%s|%s|%s|%s|%s|%s|%s|%s|%s|%s|%s',
            e.tenant_id, e.seq,
            to_char(e.at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US'),
            quote_nullable(e.actor_kind), quote_nullable(e.actor_id),
            quote_nullable(e.action), quote_nullable(e.target_type),
            quote_nullable(e.target_id), quote_nullable(e.subject_id),
            quote_nullable(e.request_id), quote_nullable(e.details::text)
          ), 'UTF8'));
        END $$
        """
    )


def downgrade() -> None:
    op.execute("DROP FUNCTION IF EXISTS govern_audit_hash(record)")
