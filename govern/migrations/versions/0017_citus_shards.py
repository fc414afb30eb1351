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
- the `devices_route` trigger is replaced by `govern_retire_device_routes(device_ids)`,
  which the application calls where it revokes or deletes devices: on a worker the trigger
  fires on a shard and wrote the reference table `device_routes` from there ("cannot
  execute a distributed query from a query on a shard"). The function only retires live
  routes of the caller's own tenant (the tenant scope), as the trigger did.

Revision ID: 0017_citus_shards
Revises: 0016_dp_person_day_budget
Create Date: 2026-12-02
"""

from alembic import op

from govern.config import APP_ROLE

revision = "0017_citus_shards"
down_revision = "0016_dp_person_day_budget"
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
    op.execute("DROP TRIGGER IF EXISTS devices_route ON devices")
    op.execute(
        """
        CREATE FUNCTION govern_retire_device_routes(p_device_ids uuid[]) RETURNS integer
        LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
        DECLARE
          t uuid := NULLIF(current_setting('govern.tenant_id', true), '')::uuid;
          n integer;
        BEGIN
          UPDATE device_routes SET retired_at = now()
          WHERE tenant_id = t AND device_id = ANY(p_device_ids) AND retired_at IS NULL;
          GET DIAGNOSTICS n = ROW_COUNT;
          RETURN n;
        END $$
        """
    )
    op.execute("REVOKE ALL ON FUNCTION govern_retire_device_routes(uuid[]) FROM PUBLIC")
    op.execute(f"GRANT EXECUTE ON FUNCTION govern_retire_device_routes(uuid[]) TO {APP_ROLE}")


def downgrade() -> None:
    op.execute("DROP FUNCTION IF EXISTS govern_retire_device_routes(uuid[])")
    op.execute(
        "CREATE TRIGGER devices_route AFTER UPDATE OR DELETE ON devices "
        "FOR EACH ROW EXECUTE FUNCTION govern_sync_device_route()"
    )
    op.execute("DROP FUNCTION IF EXISTS govern_keep_refusals(jsonb, jsonb, int)")
    op.execute("DROP FUNCTION IF EXISTS govern_add_counts(jsonb, jsonb)")
    op.execute("DROP FUNCTION IF EXISTS govern_audit_hash(record)")
