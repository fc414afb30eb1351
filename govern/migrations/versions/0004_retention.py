"""retention: legal holds, retention state and run evidence, owner maintenance visibility

Revision ID: 0004_retention
Revises: 0003_pings
Create Date: 2026-11-21
"""

from alembic import op

from govern.rls import enable_tenant_rls, grant_app, owner_maintenance

revision = "0004_retention"
down_revision = "0003_pings"
branch_labels = None
depends_on = None

TABLES = ("legal_holds", "retention_state", "retention_runs")
# Tables the scheduler's partition job reads across tenants, as the schema owner.
MAINTENANCE_READ = ("tenants", "purposes", "legal_holds", "pings")


def upgrade() -> None:
    op.execute(
        """
        CREATE TABLE legal_holds (
          tenant_id uuid NOT NULL REFERENCES tenants (tenant_id) ON DELETE CASCADE,
          hold_id uuid NOT NULL,
          subject_id uuid,
          reason text NOT NULL CHECK (length(reason) > 0),
          starts_at timestamptz NOT NULL,
          ends_at timestamptz,
          created_at timestamptz NOT NULL DEFAULT now(),
          created_by text NOT NULL,
          caught_up_at timestamptz,
          PRIMARY KEY (tenant_id, hold_id),
          FOREIGN KEY (tenant_id, subject_id) REFERENCES subjects (tenant_id, subject_id),
          CHECK (ends_at IS NULL OR ends_at > starts_at)
        )
        """
    )
    op.execute(
        """
        CREATE TABLE retention_state (
          tenant_id uuid NOT NULL REFERENCES tenants (tenant_id) ON DELETE CASCADE,
          purpose_id uuid NOT NULL,
          aged_until timestamptz NOT NULL DEFAULT '1970-01-01 00:00:00+00',
          precision_applied integer,
          PRIMARY KEY (tenant_id, purpose_id),
          FOREIGN KEY (tenant_id, purpose_id) REFERENCES purposes (tenant_id, purpose_id)
            ON DELETE CASCADE
        )
        """
    )
    op.execute("ALTER TABLE tenants ADD COLUMN consent_seq_applied bigint NOT NULL DEFAULT 0")
    op.execute(
        """
        CREATE TABLE retention_runs (
          tenant_id uuid NOT NULL REFERENCES tenants (tenant_id) ON DELETE CASCADE,
          run_id uuid NOT NULL,
          entry smallint NOT NULL,
          started_at timestamptz NOT NULL,
          finished_at timestamptz NOT NULL DEFAULT now(),
          kind text NOT NULL,
          purpose_key text,
          cutoff timestamptz,
          aged bigint NOT NULL DEFAULT 0,
          deleted bigint NOT NULL DEFAULT 0,
          dropped bigint NOT NULL DEFAULT 0,
          dry_run boolean NOT NULL DEFAULT false,
          details jsonb NOT NULL DEFAULT '{}',
          PRIMARY KEY (tenant_id, run_id, entry)
        )
        """
    )
    op.execute("CREATE INDEX retention_runs_time ON retention_runs (tenant_id, started_at)")

    for table in TABLES:
        for stmt in enable_tenant_rls(table):
            op.execute(stmt)
    op.execute(grant_app("legal_holds"))
    op.execute(grant_app("retention_state"))
    op.execute(grant_app("retention_runs", "SELECT, INSERT"))
    for table in MAINTENANCE_READ:
        op.execute(owner_maintenance(table))


def downgrade() -> None:
    for table in MAINTENANCE_READ:
        op.execute(f"DROP POLICY IF EXISTS owner_maintenance ON {table}")
    op.execute("DROP TABLE IF EXISTS retention_runs")
    op.execute("ALTER TABLE tenants DROP COLUMN IF EXISTS consent_seq_applied")
    op.execute("DROP TABLE IF EXISTS retention_state")
    op.execute("DROP TABLE IF EXISTS legal_holds")
