"""rights: subject requests, erasure tombstones, disclosures, erasure of the consent ledger

Revision ID: 0006_rights
Revises: 0005_reports
Create Date: 2026-11-21
"""

from alembic import op

from govern.config import APP_ROLE
from govern.rls import enable_tenant_rls, grant_app, owner_maintenance

revision = "0006_rights"
down_revision = "0005_reports"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("ALTER TABLE subjects ADD COLUMN erased_at timestamptz")
    op.execute(
        """
        CREATE TABLE subject_requests (
          tenant_id uuid NOT NULL REFERENCES tenants (tenant_id) ON DELETE CASCADE,
          request_id uuid NOT NULL,
          subject_id uuid NOT NULL,
          kind text NOT NULL CHECK (kind IN ('access', 'erasure')),
          status text NOT NULL DEFAULT 'open'
            CHECK (status IN ('open', 'completed', 'refused')),
          source text NOT NULL CHECK (source IN ('admin', 'device')),
          received_at timestamptz NOT NULL DEFAULT now(),
          due_at timestamptz NOT NULL,
          completed_at timestamptz,
          note text,
          evidence jsonb NOT NULL DEFAULT '{}',
          created_by text NOT NULL,
          PRIMARY KEY (tenant_id, request_id),
          FOREIGN KEY (tenant_id, subject_id) REFERENCES subjects (tenant_id, subject_id)
        )
        """
    )
    op.execute("CREATE INDEX subject_requests_due ON subject_requests (tenant_id, status, due_at)")
    op.execute(
        """
        CREATE TABLE erasure_tombstones (
          tenant_id uuid NOT NULL REFERENCES tenants (tenant_id) ON DELETE CASCADE,
          subject_id uuid NOT NULL,
          erased_at timestamptz NOT NULL DEFAULT now(),
          erased_by text NOT NULL,
          request_id uuid,
          counts jsonb NOT NULL,
          consent_ledger_kept boolean NOT NULL,
          PRIMARY KEY (tenant_id, subject_id, erased_at)
        )
        """
    )
    op.execute(
        """
        CREATE TABLE disclosures (
          tenant_id uuid NOT NULL REFERENCES tenants (tenant_id) ON DELETE CASCADE,
          disclosure_id uuid NOT NULL,
          authority text NOT NULL,
          legal_basis text NOT NULL,
          subject_ids uuid[] NOT NULL,
          range_from timestamptz,
          range_to timestamptz,
          description text NOT NULL,
          disclosed_at timestamptz NOT NULL,
          notified_at timestamptz,
          not_notified_reason text,
          created_at timestamptz NOT NULL DEFAULT now(),
          created_by text NOT NULL,
          PRIMARY KEY (tenant_id, disclosure_id)
        )
        """
    )
    op.execute("CREATE INDEX disclosures_subjects ON disclosures USING gin (subject_ids)")
    for table in ("subject_requests", "erasure_tombstones", "disclosures"):
        for stmt in enable_tenant_rls(table):
            op.execute(stmt)
    op.execute(grant_app("subject_requests", "SELECT, INSERT, UPDATE"))
    op.execute(grant_app("erasure_tombstones", "SELECT, INSERT"))
    op.execute(grant_app("disclosures", "SELECT, INSERT, UPDATE"))
    op.execute(owner_maintenance("subject_requests"))
    op.execute(grant_app("duty_events", "DELETE"))  # erasure removes duty history

    # Erasure may remove a subject's consent ledger (when the tenant keeps no proof); the
    # app role itself can never delete from the ledger, so it asks the owner to, for the
    # tenant in scope only (row-level security still applies to the owner).
    op.execute(
        """
        CREATE FUNCTION govern_erase_consent_ledger(p_subject uuid) RETURNS bigint
        LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
        DECLARE n bigint;
        BEGIN
          IF NULLIF(current_setting('govern.tenant_id', true), '') IS NULL THEN
            RAISE EXCEPTION 'no tenant in scope';
          END IF;
          DELETE FROM consent_events
            WHERE subject_id = p_subject
              AND tenant_id = current_setting('govern.tenant_id')::uuid;
          GET DIAGNOSTICS n = ROW_COUNT;
          RETURN n;
        END $$
        """
    )
    op.execute("REVOKE ALL ON FUNCTION govern_erase_consent_ledger(uuid) FROM PUBLIC")
    op.execute(f"GRANT EXECUTE ON FUNCTION govern_erase_consent_ledger(uuid) TO {APP_ROLE}")

    # Open and overdue request counts for /metrics: numbers only, across tenants.
    op.execute(
        """
        CREATE FUNCTION govern_request_counts() RETURNS TABLE (open bigint, overdue bigint)
        LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
          SELECT count(*) FILTER (WHERE status = 'open'),
                 count(*) FILTER (WHERE status = 'open' AND due_at < now())
          FROM subject_requests
        $$
        """
    )
    op.execute("REVOKE ALL ON FUNCTION govern_request_counts() FROM PUBLIC")
    op.execute(f"GRANT EXECUTE ON FUNCTION govern_request_counts() TO {APP_ROLE}")


def downgrade() -> None:
    op.execute("DROP FUNCTION IF EXISTS govern_request_counts()")
    op.execute("DROP FUNCTION IF EXISTS govern_erase_consent_ledger(uuid)")
    op.execute("DROP TABLE IF EXISTS disclosures")
    op.execute("DROP TABLE IF EXISTS erasure_tombstones")
    op.execute("DROP TABLE IF EXISTS subject_requests")
    op.execute("ALTER TABLE subjects DROP COLUMN IF EXISTS erased_at")
