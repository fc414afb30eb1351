"""citus shards: what the triggers need to run on a shard of a Citus worker

- `govern_audit_hash(record)`: on a worker the audit trigger fires on a shard
  (`audit_log_102028`), whose row type is not `audit_log`, so `govern_audit_hash(NEW)` found
  no function. The record overload computes the same hash from the same fields; on
  PostgreSQL (and on the coordinator) the `audit_log` version is still the one chosen, so
  nothing changes there. `audit verify` calls it the same way on the shards.
- `govern_add_counts(old, new)` and `govern_keep_refusals(new, old, n)`: the ingest
  diagnostics upsert merged its jsonb counters with subqueries inside `ON CONFLICT DO
  UPDATE`, which Citus refuses ("subqueries are not supported within INSERT queries"); the
  same expressions as IMMUTABLE functions (govern/sql/diagnostics.py).

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


    op.execute(
        """
        CREATE FUNCTION govern_add_counts(old jsonb, new jsonb) RETURNS jsonb
        LANGUAGE sql IMMUTABLE AS $$
          SELECT CASE WHEN new = '{}'::jsonb THEN old ELSE (
            SELECT coalesce(jsonb_object_agg(k, n), '{}'::jsonb) FROM (
              SELECT k, sum(v::bigint) AS n FROM (
                SELECT * FROM jsonb_each_text(old) UNION ALL SELECT * FROM jsonb_each_text(new)
              ) AS e(k, v) GROUP BY k) AS s) END
        $$
        """
    )
    op.execute(
        """
        CREATE FUNCTION govern_keep_refusals(new jsonb, old jsonb, kept int) RETURNS jsonb
        LANGUAGE sql IMMUTABLE AS $$
          SELECT CASE WHEN jsonb_array_length(new) = 0 THEN old ELSE (
            SELECT coalesce(jsonb_agg(e ORDER BY n), '[]'::jsonb)
            FROM jsonb_array_elements(new || old) WITH ORDINALITY AS x(e, n)
            WHERE n <= kept) END
        $$
        """
    )


def downgrade() -> None:
    op.execute("DROP FUNCTION IF EXISTS govern_keep_refusals(jsonb, jsonb, int)")
    op.execute("DROP FUNCTION IF EXISTS govern_add_counts(jsonb, jsonb)")
    op.execute("DROP FUNCTION IF EXISTS govern_audit_hash(record)")
