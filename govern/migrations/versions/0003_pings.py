"""pings: time-partitioned governed pings, duty events, hourly rollups with hll sketches,
the precision grid function and on-demand day partitions

Revision ID: 0003_pings
Revises: 0002_policy
Create Date: 2026-11-21
"""

from alembic import op

from govern.config import APP_ROLE
from govern.rls import enable_tenant_rls, grant_app

revision = "0003_pings"
down_revision = "0002_policy"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("CREATE EXTENSION IF NOT EXISTS hll")

    # The precision grid (govern/policy/precision.py is the reference; same steps, same
    # numbers): cells at least p metres tall and wide at every latitude, centre stored.
    op.execute(
        """
        CREATE FUNCTION govern_snap(lon double precision, lat double precision,
                                    p double precision)
        RETURNS geometry LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE AS $$
        DECLARE
          n_lat double precision := greatest(1, floor(180.0 / (p / 110574.0)));
          dlat double precision := 180.0 / n_lat;
          i double precision := least(floor((lat + 90.0) / dlat), n_lat - 1);
          phi double precision := radians(greatest(abs(-90.0 + i * dlat),
                                                   abs(least(90.0, -90.0 + (i + 1) * dlat))));
          m double precision := (pi() / 180.0) * 6378137.0 * cos(phi)
                                / sqrt(1.0 - 0.00669437999014 * sin(phi) ^ 2);
          n_lon bigint := CASE WHEN m > 0 THEN greatest(1, floor(360.0 / (p / m)))::bigint
                               ELSE 1 END;
          dlon double precision := 360.0 / n_lon;
          j bigint := floor((lon + 180.0) / dlon)::bigint % n_lon;
        BEGIN
          RETURN ST_SetSRID(ST_MakePoint(-180.0 + (j + 0.5) * dlon,
                                         -90.0 + (i + 0.5) * dlat), 4326);
        END $$
        """
    )

    op.execute(
        """
        CREATE TABLE duty_events (
          tenant_id uuid NOT NULL,
          subject_id uuid NOT NULL,
          at timestamptz NOT NULL,
          seq bigint GENERATED ALWAYS AS IDENTITY,
          on_duty boolean NOT NULL,
          PRIMARY KEY (tenant_id, subject_id, at, seq),
          FOREIGN KEY (tenant_id, subject_id) REFERENCES subjects (tenant_id, subject_id)
        )
        """
    )

    op.execute(
        """
        CREATE TABLE pings (
          tenant_id uuid NOT NULL,
          device_id uuid NOT NULL,
          subject_id uuid NOT NULL,
          t timestamptz NOT NULL,
          client_key text NOT NULL,
          received_at timestamptz NOT NULL DEFAULT now(),
          purpose_mask bigint NOT NULL CHECK (purpose_mask <> 0),
          precision_m integer NOT NULL CHECK (precision_m >= 1),
          geom geometry(Point, 4326) NOT NULL,
          acc real,
          alt real,
          speed real,
          heading real,
          battery real,
          activity text,
          PRIMARY KEY (tenant_id, device_id, t, client_key)
        ) PARTITION BY RANGE (t)
        """
    )
    op.execute("CREATE INDEX pings_subject_time ON pings (tenant_id, subject_id, t)")

    # Day partitions, created by the scheduler ahead of time and by ingest on demand (a ping
    # from a phone that was offline for a week). The app role may call this, not CREATE.
    op.execute(
        """
        CREATE FUNCTION govern_ensure_ping_partition(d date) RETURNS boolean
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
          EXECUTE format(
            'CREATE TABLE %I PARTITION OF pings FOR VALUES FROM (%L) TO (%L)',
            name, (d::timestamp AT TIME ZONE 'UTC'), ((d + 1)::timestamp AT TIME ZONE 'UTC'));
          RETURN true;
        END $$
        """
    )
    op.execute("REVOKE ALL ON FUNCTION govern_ensure_ping_partition(date) FROM PUBLIC")
    op.execute(f"GRANT EXECUTE ON FUNCTION govern_ensure_ping_partition(date) TO {APP_ROLE}")
    op.execute(
        "SELECT govern_ensure_ping_partition((current_date + k)::date) "
        "FROM generate_series(-2, 7) AS k"
    )

    # Hourly rollups per H3 cell (resolution 9, with its parents for coarser heatmaps): ping
    # count and a distinct-subject HyperLogLog sketch. Reports read these, never raw pings.
    op.execute(
        """
        CREATE TABLE rollups (
          tenant_id uuid NOT NULL,
          bucket timestamptz NOT NULL,
          cell bigint NOT NULL,
          r8 bigint NOT NULL,
          r7 bigint NOT NULL,
          r6 bigint NOT NULL,
          r5 bigint NOT NULL,
          pings bigint NOT NULL,
          subjects hll NOT NULL,
          PRIMARY KEY (tenant_id, bucket, cell),
          FOREIGN KEY (tenant_id) REFERENCES tenants (tenant_id) ON DELETE CASCADE
        )
        """
    )

    for table in ("duty_events", "pings", "rollups"):
        for stmt in enable_tenant_rls(table):
            op.execute(stmt)
    op.execute(grant_app("pings"))
    op.execute(grant_app("rollups"))
    op.execute(grant_app("duty_events", "SELECT, INSERT"))


def downgrade() -> None:
    op.execute("DROP TABLE IF EXISTS rollups")
    op.execute("DROP TABLE IF EXISTS pings CASCADE")
    op.execute("DROP FUNCTION IF EXISTS govern_ensure_ping_partition(date)")
    op.execute("DROP TABLE IF EXISTS duty_events")
    op.execute("DROP FUNCTION IF EXISTS govern_snap(double precision, double precision, "
               "double precision)")
