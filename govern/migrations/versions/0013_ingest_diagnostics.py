"""ingest diagnostics: what each device's requests became, and pings timed by the server

`pings.server_time` marks a ping whose client sent no time (an OsmAnd tracker without
`timestamp`): its `t` is the receipt time. A constant default adds the column without
rewriting any partition.

`ingest_hourly` counts, per device and hour, the requests and what became of their items
(accepted, duplicates, ignored, dropped by reason, rejected by field, whole requests refused
by error code): one upsert per request. `ingest_state` keeps per device the last accepted
ping, the run of requests that stored nothing and refused something, and the last refusals
(reason and field, never a coordinate or a value).

Revision ID: 0013_ingest_diagnostics
Revises: 0012_security_round_two
Create Date: 2026-12-01
"""

from alembic import op

from govern.rls import enable_tenant_rls, grant_app

revision = "0013_ingest_diagnostics"
down_revision = "0012_security_round_two"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("ALTER TABLE pings ADD COLUMN server_time boolean NOT NULL DEFAULT false")
    op.execute(
        """
        CREATE TABLE ingest_hourly (
          tenant_id uuid NOT NULL,
          device_id uuid NOT NULL,
          hour timestamptz NOT NULL,
          requests integer NOT NULL,
          accepted integer NOT NULL,
          duplicates integer NOT NULL,
          ignored integer NOT NULL,
          server_time integer NOT NULL,
          dropped jsonb NOT NULL,
          rejected jsonb NOT NULL,
          refused jsonb NOT NULL,
          PRIMARY KEY (tenant_id, device_id, hour),
          FOREIGN KEY (tenant_id, device_id) REFERENCES devices (tenant_id, device_id)
            ON DELETE CASCADE
        )
        """
    )
    op.execute(
        """
        CREATE TABLE ingest_state (
          tenant_id uuid NOT NULL,
          device_id uuid NOT NULL,
          last_request_at timestamptz NOT NULL,
          last_accepted_at timestamptz,
          refused_streak integer NOT NULL,
          refusals jsonb NOT NULL,
          PRIMARY KEY (tenant_id, device_id),
          FOREIGN KEY (tenant_id, device_id) REFERENCES devices (tenant_id, device_id)
            ON DELETE CASCADE
        )
        """
    )
    for table in ("ingest_hourly", "ingest_state"):
        for stmt in enable_tenant_rls(table):
            op.execute(stmt)
        op.execute(grant_app(table))


def downgrade() -> None:
    op.execute("DROP TABLE IF EXISTS ingest_state")
    op.execute("DROP TABLE IF EXISTS ingest_hourly")
    op.execute("ALTER TABLE pings DROP COLUMN IF EXISTS server_time")
