"""rollup periods: closed ISO weeks and calendar months of the heatmap, precomputed per
resolution, so a month's report reads one row per released cell instead of every
cell-hour of the month

Revision ID: 0009_rollup_periods
Revises: 0008_partition_race
Create Date: 2026-11-22
"""

from alembic import op

from govern.rls import enable_tenant_rls, grant_app

revision = "0009_rollup_periods"
down_revision = "0008_partition_race"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # One row per built period. A period's cells are used only while this row exists: a
    # late ping landing in a built period deletes it, and the scheduler builds it again.
    op.execute(
        """
        CREATE TABLE rollup_periods (
          tenant_id uuid NOT NULL REFERENCES tenants (tenant_id) ON DELETE CASCADE,
          period text NOT NULL CHECK (period IN ('week', 'month')),
          period_start timestamptz NOT NULL,
          period_end timestamptz NOT NULL CHECK (period_end > period_start),
          built_at timestamptz NOT NULL DEFAULT now(),
          cells integer NOT NULL,
          PRIMARY KEY (tenant_id, period, period_start)
        )
        """
    )
    # The heatmap of the period at each resolution 5-9: what govern.sql.reports.heatmap
    # would compute from the hourly rollups (pings, distinct subjects, smallest daily
    # distinct count for sticky suppression). Counts only, no sketches: nothing is ever
    # merged across periods.
    op.execute(
        """
        CREATE TABLE rollup_period_cells (
          tenant_id uuid NOT NULL REFERENCES tenants (tenant_id) ON DELETE CASCADE,
          period text NOT NULL,
          period_start timestamptz NOT NULL,
          resolution smallint NOT NULL CHECK (resolution BETWEEN 5 AND 9),
          cell bigint NOT NULL,
          pings bigint NOT NULL,
          subjects bigint NOT NULL,
          min_day_subjects bigint NOT NULL,
          PRIMARY KEY (tenant_id, period, period_start, resolution, cell)
        )
        """
    )
    for table in ("rollup_periods", "rollup_period_cells"):
        for stmt in enable_tenant_rls(table):
            op.execute(stmt)
        op.execute(grant_app(table, "SELECT, INSERT, DELETE"))


def downgrade() -> None:
    op.execute("DROP TABLE IF EXISTS rollup_period_cells")
    op.execute("DROP TABLE IF EXISTS rollup_periods")
