"""differential privacy budget per data day: what every person-day of a UTC day has spent

`dp_person_day_budget`: one row per (tenant, UTC day of data). Every differentially private
answer charges its certified epsilon and delta to each UTC day its range touches, so the
sum over a day's row bounds what all answers together reveal about any one person-day of
that day (the unit of privacy). It never renews: a day's budget is spent once.

Revision ID: 0016_dp_person_day_budget
Revises: 0015_release_ledger
Create Date: 2026-12-02
"""

from alembic import op

from govern.rls import enable_tenant_rls, grant_app

revision = "0016_dp_person_day_budget"
down_revision = "0015_release_ledger"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        CREATE TABLE dp_person_day_budget (
          tenant_id uuid NOT NULL REFERENCES tenants (tenant_id) ON DELETE CASCADE,
          day date NOT NULL,
          epsilon double precision NOT NULL DEFAULT 0 CHECK (epsilon >= 0),
          delta double precision NOT NULL DEFAULT 0 CHECK (delta >= 0),
          answers integer NOT NULL DEFAULT 0,
          PRIMARY KEY (tenant_id, day)
        )
        """
    )
    for stmt in enable_tenant_rls("dp_person_day_budget"):
        op.execute(stmt)
    op.execute(grant_app("dp_person_day_budget", "SELECT, INSERT, UPDATE, DELETE"))


def downgrade() -> None:
    op.execute("DROP TABLE IF EXISTS dp_person_day_budget")
