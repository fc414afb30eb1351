"""Stops and trips age like the pings they come from (retention's pass, by end time)."""

from __future__ import annotations

from sqlalchemy import text

from govern.sql.retention import ageing_candidates
from govern.sql.trips import site_at

# The same rule as pings (govern.sql.retention.ageing_candidates), by each record's end
# time: purposes whose window closed or that were withdrawn leave the mask; a record whose
# remaining purposes allow less precision is coarsened (points re-snapped, cells to a
# coarser resolution, sites re-attributed from the coarser point, by the subquery naming
# the tenant: Citus refuses the STABLE govern_site_at() in an UPDATE's CASE); with no
# purpose left it is deleted.


def _ageing(table: str, points: list[tuple[str, str, str, str]], limit: bool) -> str:
    cols = ", ".join(f"x.{c}" for lon, lat, cell, site in points for c in (lon, lat, cell))
    snapped = ",\n".join(
        f"govern_snap(c.{lon}, c.{lat}, c.new_precision) AS g_{i}"
        for i, (lon, lat, _, _) in enumerate(points))
    sets = ",\n".join(
        f"{lon} = CASE WHEN k.coarser THEN ST_X(k.g_{i}) ELSE x.{lon} END, "
        f"{lat} = CASE WHEN k.coarser THEN ST_Y(k.g_{i}) ELSE x.{lat} END, "
        f"{cell} = CASE WHEN k.coarser THEN govern_h3_parent(x.{cell}, "
        f"govern_h3_res_for(k.new_precision)) ELSE x.{cell} END, "
        f"{site} = CASE WHEN k.coarser THEN ({site_at(f'ST_X(k.g_{i})', f'ST_Y(k.g_{i})')}) "
        f"ELSE x.{site} END"
        for i, (lon, lat, cell, site) in enumerate(points))
    return "WITH " + ageing_candidates(
        table, "x.tenant_id, x.subject_id, x.started_at", "ended_at", extra=f", {cols}",
        limit=limit) + ("" if not limit else f""",
    deleted AS (
      DELETE FROM {table} x USING changing c
      WHERE c.new_mask = 0 AND x.tenant_id = :tenant_id AND x.tenant_id = c.tenant_id
        AND x.subject_id = c.subject_id
        AND x.started_at = c.started_at
      RETURNING 1
    ),
    coarse AS (
      SELECT c.tenant_id, c.subject_id, c.started_at, c.new_mask, c.new_precision,
             c.new_precision > c.precision_m AS coarser,
             {snapped}
      FROM changing c WHERE c.new_mask <> 0
    ),
    aged AS (
      UPDATE {table} x SET
        purpose_mask = k.new_mask,
        precision_m = greatest(x.precision_m, k.new_precision),
        {sets}
      FROM coarse k
      WHERE x.tenant_id = :tenant_id AND x.tenant_id = k.tenant_id
        AND x.subject_id = k.subject_id
        AND x.started_at = k.started_at
      RETURNING 1
    )
    SELECT (SELECT count(*) FROM aged) AS aged, (SELECT count(*) FROM deleted) AS deleted
    """)


_STOP_POINTS = [("lon", "lat", "cell", "site_id")]
_TRIP_POINTS = [("origin_lon", "origin_lat", "origin_cell", "origin_site_id"),
                ("dest_lon", "dest_lat", "dest_cell", "dest_site_id")]
AGE_BATCH = {"stops": text(_ageing("stops", _STOP_POINTS, True)),
             "trips": text(_ageing("trips", _TRIP_POINTS, True))}
AGE_PENDING = {
    t: text(_ageing(t, p, False) + """
    SELECT count(*) FILTER (WHERE new_mask <> 0) AS aged,
           count(*) FILTER (WHERE new_mask = 0) AS deleted
    FROM changing
    """) for t, p in (("stops", _STOP_POINTS), ("trips", _TRIP_POINTS))}
