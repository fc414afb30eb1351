"""zone sweeps: a privacy zone drawn after pings were stored is applied to them on disk too

`swept_at` is set by the retention run once the pings (and stops and trips) stored inside
the zone before it existed are deleted; until then reads already hide them. Zones that
exist when this migration runs are swept by the next run.

Revision ID: 0011_zone_sweeps
Revises: 0010_ingest_speed
Create Date: 2026-11-22
"""

from alembic import op

revision = "0011_zone_sweeps"
down_revision = "0010_ingest_speed"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("ALTER TABLE zones ADD COLUMN swept_at timestamptz")
    op.execute("CREATE INDEX zones_unswept ON zones (tenant_id) WHERE swept_at IS NULL")


def downgrade() -> None:
    op.execute("DROP INDEX IF EXISTS zones_unswept")
    op.execute("ALTER TABLE zones DROP COLUMN IF EXISTS swept_at")
