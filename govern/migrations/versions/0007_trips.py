"""trips: sites, stops and trips derived from pings, the build watermark, H3 helpers

Revision ID: 0007_trips
Revises: 0006_rights
Create Date: 2026-11-22
"""

from alembic import op

from govern.rls import enable_tenant_rls, grant_app

revision = "0007_trips"
down_revision = "0006_rights"
branch_labels = None
depends_on = None

TABLES = ("sites", "stops", "trips", "trip_builds")

# The finest H3 resolution whose hexagons (average edge e, width sqrt(3) * e) are at least
# p metres wide: a cell kept for a record at precision p is never finer than p. Mirrored by
# govern.domain.trips.h3_resolution_for (a test keeps the two equal).
H3_RES_FOR = """
CREATE FUNCTION govern_h3_res_for(p integer) RETURNS integer
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT CASE WHEN p <= 799 THEN 8 WHEN p <= 2114 THEN 7 WHEN p <= 5593 THEN 6
              WHEN p <= 14799 THEN 5 WHEN p <= 39155 THEN 4 WHEN p <= 103595 THEN 3
              WHEN p <= 274087 THEN 2 WHEN p <= 725168 THEN 1 ELSE 0 END
$$
"""

# The parent of an H3 cell index at a coarser resolution, by the index's bit layout
# (resolution in bits 52-55, one 3-bit digit per resolution, unused digits all ones). Not
# STRICT, so the planner inlines it into the reports' queries.
H3_PARENT = """
CREATE FUNCTION govern_h3_parent(cell bigint, res integer) RETURNS bigint
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT CASE WHEN res >= ((cell >> 52) & 15) THEN cell
              ELSE (cell & ~(15::bigint << 52)) | (res::bigint << 52)
                   | ((1::bigint << (3 * (15 - res))) - 1) END
$$
"""

# The site a point lies in (the smallest when sites nest), in the tenant in scope: a plain
# SQL function, so row-level security applies to it as to the caller.
SITE_AT = """
CREATE FUNCTION govern_site_at(lon double precision, lat double precision) RETURNS uuid
LANGUAGE sql STABLE STRICT PARALLEL SAFE AS $$
  SELECT s.site_id FROM sites s
  WHERE ST_Intersects(s.area, ST_SetSRID(ST_MakePoint(lon, lat), 4326))
  ORDER BY ST_Area(s.area), s.site_id
  LIMIT 1
$$
"""


def upgrade() -> None:
    op.execute(
        """
        CREATE TABLE sites (
          tenant_id uuid NOT NULL REFERENCES tenants (tenant_id) ON DELETE CASCADE,
          site_id uuid NOT NULL,
          name text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
          kind text CHECK (kind IS NULL OR length(kind) BETWEEN 1 AND 40),
          geometry jsonb NOT NULL,
          radius_m double precision,
          area geometry(MultiPolygon, 4326) NOT NULL,
          created_at timestamptz NOT NULL DEFAULT now(),
          created_by text NOT NULL,
          updated_at timestamptz NOT NULL DEFAULT now(),
          PRIMARY KEY (tenant_id, site_id),
          UNIQUE (tenant_id, name)
        )
        """
    )
    op.execute("CREATE INDEX sites_area ON sites USING gist (area)")

    # Stops and trips keep no coordinate finer than their precision (the finest their
    # purposes allow), and only one point per end: the representative point snapped on the
    # precision grid, its H3 cell (resolution for that precision) and the site it lies in.
    op.execute(
        """
        CREATE TABLE stops (
          tenant_id uuid NOT NULL,
          subject_id uuid NOT NULL,
          started_at timestamptz NOT NULL,
          ended_at timestamptz NOT NULL,
          duration_s integer NOT NULL CHECK (duration_s >= 0),
          lon double precision NOT NULL,
          lat double precision NOT NULL,
          cell bigint NOT NULL,
          cell_h3 text GENERATED ALWAYS AS (lpad(to_hex(cell), 15, '0')) STORED,
          site_id uuid,
          pings integer NOT NULL,
          purpose_mask bigint NOT NULL CHECK (purpose_mask <> 0),
          precision_m integer NOT NULL CHECK (precision_m >= 1),
          built_at timestamptz NOT NULL DEFAULT now(),
          PRIMARY KEY (tenant_id, subject_id, started_at),
          FOREIGN KEY (tenant_id, subject_id) REFERENCES subjects (tenant_id, subject_id),
          FOREIGN KEY (tenant_id, site_id) REFERENCES sites (tenant_id, site_id)
            ON DELETE SET NULL (site_id),
          CHECK (ended_at >= started_at)
        )
        """
    )
    op.execute("CREATE INDEX stops_time ON stops (tenant_id, started_at)")
    op.execute(
        """
        CREATE TABLE trips (
          tenant_id uuid NOT NULL,
          subject_id uuid NOT NULL,
          started_at timestamptz NOT NULL,
          ended_at timestamptz NOT NULL,
          duration_s integer NOT NULL CHECK (duration_s >= 0),
          moving_s integer NOT NULL CHECK (moving_s >= 0),
          distance_m double precision NOT NULL CHECK (distance_m >= 0),
          origin_lon double precision NOT NULL,
          origin_lat double precision NOT NULL,
          origin_cell bigint NOT NULL,
          origin_h3 text GENERATED ALWAYS AS (lpad(to_hex(origin_cell), 15, '0')) STORED,
          origin_site_id uuid,
          dest_lon double precision NOT NULL,
          dest_lat double precision NOT NULL,
          dest_cell bigint NOT NULL,
          dest_h3 text GENERATED ALWAYS AS (lpad(to_hex(dest_cell), 15, '0')) STORED,
          dest_site_id uuid,
          from_stop boolean NOT NULL,
          to_stop boolean NOT NULL,
          pings integer NOT NULL,
          purpose_mask bigint NOT NULL CHECK (purpose_mask <> 0),
          precision_m integer NOT NULL CHECK (precision_m >= 1),
          built_at timestamptz NOT NULL DEFAULT now(),
          PRIMARY KEY (tenant_id, subject_id, started_at),
          FOREIGN KEY (tenant_id, subject_id) REFERENCES subjects (tenant_id, subject_id),
          FOREIGN KEY (tenant_id, origin_site_id) REFERENCES sites (tenant_id, site_id)
            ON DELETE SET NULL (origin_site_id),
          FOREIGN KEY (tenant_id, dest_site_id) REFERENCES sites (tenant_id, site_id)
            ON DELETE SET NULL (dest_site_id),
          CHECK (ended_at >= started_at)
        )
        """
    )
    op.execute("CREATE INDEX trips_time ON trips (tenant_id, started_at)")

    # How far each tenant's pings have been turned into stops and trips, by arrival time.
    op.execute(
        """
        CREATE TABLE trip_builds (
          tenant_id uuid PRIMARY KEY REFERENCES tenants (tenant_id) ON DELETE CASCADE,
          received_until timestamptz NOT NULL,
          last_run_at timestamptz NOT NULL DEFAULT now(),
          subjects bigint NOT NULL DEFAULT 0,
          pings bigint NOT NULL DEFAULT 0
        )
        """
    )
    # Finding pings that arrived since the last build: a BRIN index is nearly free on
    # ingest, and pings are appended in arrival order within each day partition.
    op.execute("CREATE INDEX pings_received ON pings USING brin (received_at) "
               "WITH (pages_per_range = 32)")

    op.execute(H3_RES_FOR)
    op.execute(H3_PARENT)
    op.execute(SITE_AT)

    for table in TABLES:
        for stmt in enable_tenant_rls(table):
            op.execute(stmt)
    op.execute(grant_app("sites"))
    op.execute(grant_app("stops"))
    op.execute(grant_app("trips"))
    op.execute(grant_app("trip_builds", "SELECT, INSERT, UPDATE"))


def downgrade() -> None:
    op.execute("DROP FUNCTION IF EXISTS govern_site_at(double precision, double precision)")
    op.execute("DROP FUNCTION IF EXISTS govern_h3_parent(bigint, integer)")
    op.execute("DROP FUNCTION IF EXISTS govern_h3_res_for(integer)")
    op.execute("DROP INDEX IF EXISTS pings_received")
    op.execute("DROP TABLE IF EXISTS trip_builds")
    op.execute("DROP TABLE IF EXISTS trips")
    op.execute("DROP TABLE IF EXISTS stops")
    op.execute("DROP TABLE IF EXISTS sites")
