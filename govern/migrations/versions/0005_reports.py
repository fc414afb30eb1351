"""reports: per-tenant daily differential-privacy budget

Revision ID: 0005_reports
Revises: 0004_retention
Create Date: 2026-11-21
"""

from alembic import op

from govern.rls import enable_tenant_rls, grant_app

revision = "0005_reports"
down_revision = "0004_retention"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        CREATE TABLE dp_budget (
          tenant_id uuid NOT NULL REFERENCES tenants (tenant_id) ON DELETE CASCADE,
          day date NOT NULL,
          spent double precision NOT NULL DEFAULT 0 CHECK (spent >= 0),
          queries integer NOT NULL DEFAULT 0,
          PRIMARY KEY (tenant_id, day)
        )
        """
    )
    for stmt in enable_tenant_rls("dp_budget"):
        op.execute(stmt)
    op.execute(grant_app("dp_budget", "SELECT, INSERT, UPDATE"))


def downgrade() -> None:
    op.execute("DROP TABLE IF EXISTS dp_budget")
