"""zone hiding: zones that do not point at their secret, tested against a stored point's cell

A zone's `drawn` is the protected shape exactly as drawn (what `area` was), and `area` is
now the hidden region drawn around what it protects (for a circle: a
larger circle whose centre is offset at random from the protected point; for a polygon: its
parts swept by a random vector and buffered), drawn once and stored; `reach` is that area
grown by `trim_m`, the most a trip's first or last stretch is additionally trimmed (by a
per-trip fraction, govern_zone_trim, keyed by the zone's secret `salt`). `vertices` counts
the stored area's vertices (the zone limits add them up); `scale_m` is the radius the
hiding is drawn in proportion to (a circle's radius, a polygon's equivalent radius). Zones
drawn before this migration keep their area (centred on what they protect) and get no
trim: `hiding` is 'legacy' for them until an admin draws them again.

govern_cell is the precision cell a stored point stands for (the reference grid of
govern/policy/precision.py, as govern_snap): a zone hides a point when it meets the point's
cell, not only the cell's centre.

Revision ID: 0014_zone_hiding
Revises: 0013_ingest_diagnostics
Create Date: 2026-12-01
"""

from alembic import op

revision = "0014_zone_hiding"
down_revision = "0013_ingest_diagnostics"
branch_labels = None
depends_on = None

# The cell of the grid at precision p that contains (lon, lat), as a box: the same float8
# steps as govern_snap (0010), ending at the cell's edges instead of its centre.
CELL = """
CREATE OR REPLACE FUNCTION govern_cell(lon double precision, lat double precision,
                                       p double precision)
RETURNS geometry LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE AS $$
DECLARE
  n_lat float8 := greatest(1.0::float8, floor(180.0::float8 / (p / 110574.0::float8)));
  dlat float8 := 180.0::float8 / n_lat;
  i float8 := least(floor((lat + 90.0::float8) / dlat), n_lat - 1.0::float8);
  south float8 := -90.0::float8 + i * dlat;
  north float8 := least(90.0::float8, -90.0::float8 + (i + 1.0::float8) * dlat);
  phi float8 := radians(greatest(abs(south), abs(north)));
  m float8 := (pi() / 180.0::float8) * 6378137.0::float8 * cos(phi)
              / sqrt(1.0::float8 - 0.00669437999014::float8 * sin(phi) ^ 2.0::float8);
  n_lon bigint := CASE WHEN m > 0
                       THEN greatest(1.0::float8, floor(360.0::float8 / (p / m)))::bigint
                       ELSE 1 END;
  dlon float8 := 360.0::float8 / n_lon::float8;
  j bigint := floor((lon + 180.0::float8) / dlon)::bigint % n_lon;
  west float8 := -180.0::float8 + j::float8 * dlon;
BEGIN
  RETURN ST_MakeEnvelope(west, south, west + dlon, north, 4326);
END $$
"""

# The fraction (0 <= f < 1) of a zone's trim that applies to a subject's pings in one
# quarter hour: a trip leaving or reaching the zone is trimmed by its own random distance,
# the same on every read. Keyed by the zone's secret salt, which no API returns.
TRIM = """
CREATE OR REPLACE FUNCTION govern_zone_trim(salt text, subject uuid, t timestamptz)
RETURNS double precision LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT (hashtextextended(salt || ':' || coalesce(subject::text, '') || ':'
                           || floor(extract(epoch FROM t) / 900.0)::bigint::text, 0)
          & 2147483647)::float8 / 2147483648.0::float8
$$
"""


def upgrade() -> None:
    op.execute(CELL)
    op.execute(TRIM)
    op.execute(
        """
        ALTER TABLE zones
          ADD COLUMN hiding text NOT NULL DEFAULT 'legacy'
            CHECK (hiding IN ('legacy', 'offset', 'plain')),
          ADD COLUMN trim_m double precision NOT NULL DEFAULT 0 CHECK (trim_m >= 0),
          ADD COLUMN salt text NOT NULL DEFAULT md5(random()::text || clock_timestamp()::text),
          ADD COLUMN drawn geometry(MultiPolygon, 4326),
          ADD COLUMN reach geometry(MultiPolygon, 4326),
          ADD COLUMN vertices integer,
          ADD COLUMN scale_m double precision
        """
    )
    op.execute("UPDATE zones SET drawn = area, reach = area, vertices = ST_NPoints(area), "
               "scale_m = coalesce(radius_m, sqrt(ST_Area(area::geography) / pi()))")
    op.execute("ALTER TABLE zones ALTER COLUMN reach SET NOT NULL, "
               "ALTER COLUMN drawn SET NOT NULL, "
               "ALTER COLUMN vertices SET NOT NULL")
    op.execute("CREATE INDEX zones_reach ON zones USING gist (reach)")


def downgrade() -> None:
    op.execute("DROP INDEX IF EXISTS zones_reach")
    op.execute("ALTER TABLE zones DROP COLUMN IF EXISTS vertices, "
               "DROP COLUMN IF EXISTS scale_m, DROP COLUMN IF EXISTS reach, "
               "DROP COLUMN IF EXISTS drawn, "
               "DROP COLUMN IF EXISTS salt, DROP COLUMN IF EXISTS trim_m, "
               "DROP COLUMN IF EXISTS hiding")
    op.execute("DROP FUNCTION IF EXISTS govern_zone_trim(text, uuid, timestamptz)")
    op.execute("DROP FUNCTION IF EXISTS govern_cell(double precision, double precision, "
               "double precision)")
