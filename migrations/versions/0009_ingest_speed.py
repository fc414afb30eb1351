"""ingest speed: govern_snap as one inlinable SQL expression instead of PL/pgSQL

The planner inlines a single-expression `LANGUAGE sql` function into the statement that
calls it, so the ingest INSERT (and the retention and read paths) no longer pay a PL/pgSQL
call per row. Same grid, same steps as govern/policy/precision.py, every step in float8
arithmetic as the Python reference does it. (The PL/pgSQL body divided `360.0 / n_lon` in
numeric, which can differ from the reference in the last bit of a longitude.)

Inlining a STRICT function needs a strict expression, so GREATEST/LEAST (which skip NULLs)
are written as float8larger/float8smaller, and the `CASE WHEN m > 0` guard is gone: m is a
cosine of an angle in [0, 90] degrees, which is positive in float8 even at 90 (6e-17), so
the guard never applied. NULL in still gives NULL out.

Revision ID: 0009_ingest_speed
Revises: 0008_partition_race
Create Date: 2026-11-22
"""

from alembic import op

revision = "0009_ingest_speed"
down_revision = "0008_partition_race"
branch_labels = None
depends_on = None

# Each nested SELECT-free expression repeats a step of the reference; the planner folds the
# repeated parameter references into one expression tree (the arguments are plain columns).
_N_LAT = "float8larger(1.0::float8, floor(180.0::float8 / (p / 110574.0::float8)))"
_DLAT = f"(180.0::float8 / {_N_LAT})"
_I = f"float8smaller(floor((lat + 90.0::float8) / {_DLAT}), {_N_LAT} - 1.0::float8)"
_PHI = (f"radians(float8larger(abs(-90.0::float8 + {_I} * {_DLAT}), "
        f"abs(float8smaller(90.0::float8, -90.0::float8 + ({_I} + 1.0::float8) * {_DLAT}))))")
_M = (f"((pi() / 180.0::float8) * 6378137.0::float8 * cos({_PHI}) "
      f"/ sqrt(1.0::float8 - 0.00669437999014::float8 * sin({_PHI}) ^ 2.0::float8))")
_N_LON = f"float8larger(1.0::float8, floor(360.0::float8 / (p / {_M})))::bigint"
_DLON = f"(360.0::float8 / ({_N_LON})::float8)"
_J = f"(floor((lon + 180.0::float8) / {_DLON})::bigint % ({_N_LON}))"

SNAP_SQL = f"""
CREATE OR REPLACE FUNCTION govern_snap(lon double precision, lat double precision,
                                       p double precision)
RETURNS geometry LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
  SELECT ST_SetSRID(ST_MakePoint(-180.0::float8 + ({_J}::float8 + 0.5::float8) * {_DLON},
                                 -90.0::float8 + ({_I} + 0.5::float8) * {_DLAT}), 4326)
$$
"""

PLPGSQL_SNAP = """
CREATE OR REPLACE FUNCTION govern_snap(lon double precision, lat double precision,
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


def upgrade() -> None:
    op.execute(SNAP_SQL)


def downgrade() -> None:
    op.execute(PLPGSQL_SNAP)
