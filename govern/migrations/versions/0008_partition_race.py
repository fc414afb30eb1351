"""partition race: two sessions creating the same day partition at once no longer fail

The advisory lock serialises them, but the second one's catalog snapshot can predate the
first one's commit, so it tried CREATE TABLE again and failed with duplicate_table (a 500
to a device). Now that case answers "already there".

Revision ID: 0008_partition_race
Revises: 0007_trips
Create Date: 2026-11-22
"""

from alembic import op

revision = "0008_partition_race"
down_revision = "0007_trips"
branch_labels = None
depends_on = None

_BODY = """
CREATE OR REPLACE FUNCTION govern_ensure_ping_partition(d date) RETURNS boolean
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
  name text := 'pings_' || to_char(d, 'YYYYMMDD');
BEGIN
  IF to_regclass(name) IS NOT NULL THEN
    RETURN false;
  END IF;
  PERFORM pg_advisory_xact_lock(hashtextextended('govern.partition:' || name, 0));
  IF to_regclass(name) IS NOT NULL THEN
    RETURN false;
  END IF;
  BEGIN
    EXECUTE format(
      'CREATE TABLE %I PARTITION OF pings FOR VALUES FROM (%L) TO (%L)',
      name, (d::timestamp AT TIME ZONE 'UTC'), ((d + 1)::timestamp AT TIME ZONE 'UTC'));
  EXCEPTION WHEN duplicate_table THEN
    RETURN false;  {comment}
  END;
  RETURN true;
END $$
"""


def upgrade() -> None:
    op.execute(_BODY.format(comment="-- created by a concurrent session meanwhile"))


def downgrade() -> None:
    pass  # the previous body had the race; keeping the fixed one is harmless
