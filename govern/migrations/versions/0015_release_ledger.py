"""release ledger: the frozen basis every exact aggregate release is computed from, the
groups each tenant was given (for complementary suppression), and each released answer

- `release_days`: one row per (tenant, family, UTC day) whose basis is frozen. A day is
  frozen once, after it has closed and settled; releases never read live data again.
- `release_cell_atoms`: the heatmap basis, per day and resolution-9 cell (with its parents),
  pings and a distinct-subject sketch, copied from the hourly rollups.
- `release_travel_atoms`: the travel basis, per day: stops grouped by site, trips grouped by
  (origin cell, destination cell, origin site, destination site) as the sites stood, with
  counts, sums, dwell times and a distinct-subject sketch. No subject ids.
- `release_groups`: every released cell or group, as the set of basis atoms it covers.
- `release_answers`: each released answer, replayed verbatim when asked again.

Revision ID: 0015_release_ledger
Revises: 0014_zone_hiding
Create Date: 2026-12-01
"""

from alembic import op

from govern.rls import enable_tenant_rls, grant_app

revision = "0015_release_ledger"
down_revision = "0014_zone_hiding"
branch_labels = None
depends_on = None

TABLES = ("release_days", "release_cell_atoms", "release_travel_atoms", "release_groups",
          "release_answers")


def upgrade() -> None:
    op.execute(
        """
        CREATE TABLE release_days (
          tenant_id uuid NOT NULL REFERENCES tenants (tenant_id) ON DELETE CASCADE,
          family text NOT NULL CHECK (family IN ('heatmap', 'travel')),
          day timestamptz NOT NULL,
          frozen_at timestamptz NOT NULL,
          atoms integer NOT NULL,
          PRIMARY KEY (tenant_id, family, day)
        )
        """
    )
    op.execute(
        """
        CREATE TABLE release_cell_atoms (
          tenant_id uuid NOT NULL REFERENCES tenants (tenant_id) ON DELETE CASCADE,
          bucket timestamptz NOT NULL,
          cell bigint NOT NULL,
          r8 bigint NOT NULL, r7 bigint NOT NULL, r6 bigint NOT NULL, r5 bigint NOT NULL,
          pings bigint NOT NULL,
          subjects hll NOT NULL,
          PRIMARY KEY (tenant_id, bucket, cell)
        )
        """
    )
    op.execute(
        """
        CREATE TABLE release_travel_atoms (
          tenant_id uuid NOT NULL REFERENCES tenants (tenant_id) ON DELETE CASCADE,
          bucket timestamptz NOT NULL,
          atom integer NOT NULL,
          kind text NOT NULL CHECK (kind IN ('stop', 'trip')),
          site_id uuid,
          origin_cell bigint, dest_cell bigint, origin_site uuid, dest_site uuid,
          records integer NOT NULL,
          distance_m double precision NOT NULL DEFAULT 0,
          moving_s bigint NOT NULL DEFAULT 0,
          dwells integer[] NOT NULL DEFAULT '{}',
          subjects hll NOT NULL,
          PRIMARY KEY (tenant_id, bucket, atom)
        )
        """
    )
    op.execute(
        """
        CREATE TABLE release_groups (
          tenant_id uuid NOT NULL REFERENCES tenants (tenant_id) ON DELETE CASCADE,
          group_id bigint GENERATED ALWAYS AS IDENTITY,
          family text NOT NULL,
          report text NOT NULL,
          t_from timestamptz NOT NULL,
          t_to timestamptz NOT NULL,
          res smallint, cell bigint, site_id uuid,
          origin_cell bigint, dest_cell bigint, origin_site uuid, dest_site uuid,
          pending boolean NOT NULL DEFAULT true,
          PRIMARY KEY (tenant_id, group_id)
        )
        """
    )
    op.execute("CREATE INDEX release_groups_span ON release_groups (tenant_id, family, t_from)")
    op.execute(
        """
        CREATE TABLE release_answers (
          tenant_id uuid NOT NULL REFERENCES tenants (tenant_id) ON DELETE CASCADE,
          report text NOT NULL,
          key text NOT NULL,
          t_from timestamptz NOT NULL,
          t_to timestamptz NOT NULL,
          released_at timestamptz NOT NULL,
          body jsonb NOT NULL,
          PRIMARY KEY (tenant_id, report, key)
        )
        """
    )
    for table in TABLES:
        for stmt in enable_tenant_rls(table):
            op.execute(stmt)
        op.execute(grant_app(table, "SELECT, INSERT, UPDATE, DELETE"))


def downgrade() -> None:
    for table in reversed(TABLES):
        op.execute(f"DROP TABLE IF EXISTS {table}")
