"""The one zone predicate: whether a privacy zone hides a point. The door, every read (track,
positions, a subject's travel, the trips build), and the retention sweep embed this same
SQL, so a zone takes effect everywhere the moment it is created.

A stored point stands for its whole precision cell (govern/policy/precision.py; SQL
govern_cell): a zone hides it when its hidden region meets the cell, so a zone smaller than
the precision still hides what is stored in it. Beyond the region, a point within the
zone's per-trip trim (a random fraction of `trim_m` for the quarter hour, and for the
subject when the zone is tenant-wide; SQL govern_zone_trim) is hidden too, so the ends of
trips do not trace the region's boundary.
"""

from __future__ import annotations

MARK = "/* govern.sql.zones.hidden */"


# The cell is computed once per point (OFFSET 0 keeps the planner from folding it into the
# scan of zones, which evaluated it once per zone: 10,000 points against 45 zones took
# 1.0 s that way, against 0.30 s with it).
def _of_tenant(tenant: str | None) -> str:
    # naming the tenant (not only RLS) lets Citus route the statement to the tenant's shard
    # (an RLS-only correlated subquery beside a CTE is refused there)
    return f"AND z.tenant_id = {tenant}" if tenant else ""


def hidden(subject: str, lon: str, lat: str, precision: str, t: str,
           only_zone: str | None = None, tenant: str | None = None) -> str:
    """SQL: true when a zone that applies to `subject` hides the point (lon, lat) stored at
    `precision` metres, recorded at `t` (each argument an SQL expression). `only_zone`
    restricts it to one zone (the sweep of a newly drawn zone); `tenant`, the subject's
    tenant (an SQL expression), to that tenant's zones."""
    one = f"AND z.zone_id = {only_zone}" if only_zone else ""
    one += f" {_of_tenant(tenant)}" if tenant else ""
    return f"""EXISTS (SELECT 1 {MARK}
        FROM (SELECT govern_cell({lon}, {lat}, {precision}) AS box OFFSET 0) c
        JOIN zones z ON z.reach && c.box
        WHERE (z.subject_id IS NULL OR z.subject_id = {subject}) {one}
          AND (ST_Intersects(z.area, c.box)
               OR (z.trim_m > 0
                   AND ST_DWithin(z.area::geography,
                                  ST_SetSRID(ST_MakePoint({lon}, {lat}), 4326)::geography,
                                  z.trim_m * govern_zone_trim(
                                    z.salt, CASE WHEN z.subject_id IS NULL THEN {subject} END,
                                    {t})))))"""


def visible(subject: str, lon: str, lat: str, precision: str, t: str,
            tenant: str | None = None) -> str:
    """SQL: no zone hides the point (see `hidden`)."""
    return "NOT " + hidden(subject, lon, lat, precision, t, tenant=tenant)


def near(subject: str, geom: str, metres: str, tenant: str | None = None) -> str:
    """SQL: the point `geom` lies within about `metres` of the reach of a zone that applies
    to `subject` (a box test in degrees, widened by latitude; for the trips build to tell a
    silence spent inside a zone, not for hiding)."""
    return f"""EXISTS (SELECT 1 FROM zones z
        WHERE (z.subject_id IS NULL OR z.subject_id = {subject}) {_of_tenant(tenant)}
          AND z.reach && ST_Expand({geom}, {metres} / 110574.0,
                                   {metres} / (111320.0 * greatest(cos(radians(ST_Y({geom}))),
                                                                  0.01))))"""
