"""Privacy zones: nothing recorded inside one is kept. Each stores the region it hides, drawn
at random around what it protects so that the region does not point at it
(govern.policy.zones); circles are built on the spheroid, so a radius is true metres
anywhere."""

from __future__ import annotations

import math
import random
import uuid
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from govern import jsontext
from govern.domain import audit
from govern.domain.subjects import get_subject
from govern.exceptions import Conflict, Invalid, NotFound
from govern.models import Zone
from govern.policy import zones as policy
from govern.policy.zones import GeometryInvalid, validate_zone
from govern.sql import zone_drawing as sql

CIRCLE_SEGMENTS = 64
_SYSTEM_RANDOM = random.SystemRandom()


def circle_wkt(session: Session, lon: float, lat: float, radius: float) -> str:
    """A circle as lon/lat polygons that stay valid across the antimeridian and the poles.

    Across the antimeridian the ring is unwrapped around the centre and split in two; a
    circle that contains a pole becomes the whole polar cap down to its lowest latitude
    (larger than the circle: a zone errs on the side of keeping nothing)."""
    from shapely.affinity import translate
    from shapely.geometry import MultiPolygon, Polygon, box

    ring = session.execute(sql.RING, {"lon": lon, "lat": lat, "radius": radius,
                                   "n": CIRCLE_SEGMENTS}).all()
    for pole in (90.0, -90.0):
        if session.execute(sql.POLE_DISTANCE, {"lon": lon, "lat": lat, "pole": pole}).scalar() \
                <= radius / math.cos(math.pi / CIRCLE_SEGMENTS):
            edge = min(r.lat for r in ring) if pole > 0 else max(r.lat for r in ring)
            return box(-180, min(edge, pole), 180, max(edge, pole)).wkt
    points = [(r.lon + 360 * round((lon - r.lon) / 360), r.lat) for r in ring]
    shape = Polygon(points)
    parts = []
    for shift in (-360, 0, 360):
        piece = shape.intersection(box(-180 - shift, -90, 180 - shift, 90))
        if not piece.is_empty:
            piece = translate(piece, xoff=shift)
            parts.extend(piece.geoms if hasattr(piece, "geoms") else [piece])
    return MultiPolygon([p for p in parts if isinstance(p, Polygon)]).wkt


def area_expression(session: Session, geometry: dict,
                    radius_m: float | None) -> tuple[str, dict]:
    """The area exactly as drawn (sites use it; a zone hides a region drawn around it)."""
    if geometry.get("type") == "Point":
        lon, lat = geometry["coordinates"][:2]
        return sql.AREA_SQL["circle"], {"wkt": circle_wkt(session, lon, lat, float(radius_m))}
    return sql.AREA_SQL["polygon"], {"geojson": jsontext.dumps(geometry)}


@dataclass
class Hidden:
    """What a zone stores about its hidden region (the offset itself is not kept apart)."""

    area_wkt: str
    reach_wkt: str
    trim_m: float
    salt: str
    scale_m: float


def hidden_region(session: Session, drawn_wkt: str, geometry: dict, radius_m: float | None,
                  rng, hiding: policy.Hiding) -> Hidden:
    """Draw the region a new zone hides around what it protects (govern.policy.zones)."""
    if geometry.get("type") == "Point":
        lon, lat = geometry["coordinates"][:2]
        radius = float(radius_m)
        draw = policy.draw_circle(radius, rng, hiding)
        centre = session.execute(sql.PROJECT, {"lon": lon, "lat": lat, "distance": draw.offset_m,
                                            "bearing": draw.bearing_deg}).one()
        area = circle_wkt(session, centre.lon, centre.lat, draw.radius_m)
        reach = circle_wkt(session, centre.lon, centre.lat, draw.radius_m + draw.trim_m) \
            if draw.trim_m > 0 else area
        return Hidden(area, reach, draw.trim_m, draw.salt, radius)
    size = session.execute(sql.METRES, {"drawn": drawn_wkt}).one()
    draw = policy.draw_polygon(size.scale, rng, hiding)
    bearing = math.radians(draw.bearing_deg)
    row = session.execute(sql.POLYGON_HIDING, {
        "drawn": drawn_wkt,
        "dx": draw.shift_m * math.sin(bearing)
        / (111_320.0 * max(math.cos(math.radians(size.lat)), 0.01)),
        "dy": draw.shift_m * math.cos(bearing) / 110_574.0,
        "margin": draw.margin_m, "trim": draw.trim_m}).one()
    return Hidden(row.area, row.reach, draw.trim_m, draw.salt, size.scale)


def validated(geometry: dict, radius_m: float | None, max_vertices: int) -> None:
    try:
        validate_zone(geometry, radius_m, max_vertices)
    except GeometryInvalid as exc:
        raise Invalid(exc.message, exc.details, code="invalid_geometry") from exc


def check_limits(session: Session, tenant_id: uuid.UUID, subject_id: uuid.UUID | None,
                 vertices: int, limits: policy.ZoneLimits) -> None:
    """Refuse a zone that would pass a limit (409, the limit named in `details.limit`). The
    cost of the door and of every read grows with the zones that apply to a subject: the
    tenant-wide ones and the subject's own. Callers hold the tenant's zone lock."""
    totals = session.execute(sql.ZONE_TOTALS, {
        "tenant_id": session.info.get("tenant_id"), "subject_id": subject_id}).one()
    checks = [("max_zones_per_tenant", totals.zones + 1)]
    if subject_id is None:
        checks += [("max_tenant_wide_zones", totals.tenant_wide + 1),
                   ("max_tenant_wide_zone_vertices", totals.tenant_wide_vertices + vertices)]
    else:
        checks += [("max_zones_per_subject", totals.subject_zones + 1),
                   ("max_subject_zone_vertices", totals.subject_vertices + vertices)]
    for name, value in checks:
        limit = getattr(limits, name)
        if value > limit:
            raise Conflict(
                f"This zone would pass the limit {name} = {limit} (it would make {value}).",
                code="zone_limit",
                details={"limit": name, "allowed": limit, "would_be": value,
                         "zone_vertices": vertices})


def create_zone(session: Session, tenant_id: uuid.UUID, actor: str, *, name: str,
                geometry: dict, radius_m: float | None, subject_id: uuid.UUID | None,
                max_vertices: int, limits: policy.ZoneLimits | None = None,
                request_id: str | None = None, rng=None,
                hiding: policy.Hiding = policy.OFFSET) -> Zone:
    """Add a zone whose hidden region is drawn at random around what it protects (`rng`:
    the system's CSPRNG unless a test seeds one; `hiding`: govern.policy.zones.OFFSET
    unless the attack test weakens it on purpose)."""
    validated(geometry, radius_m, max_vertices)
    if subject_id is not None:
        get_subject(session, subject_id)
    expr, params = area_expression(session, geometry, radius_m)
    drawn = session.execute(sql.as_text(expr), params).scalar()
    hidden = hidden_region(session, drawn, geometry, radius_m, rng or _SYSTEM_RANDOM, hiding)
    vertices = session.execute(sql.VERTICES, {"wkt": hidden.area_wkt}).scalar()
    session.execute(sql.LOCK_ZONES, {"tenant_id": str(tenant_id)})
    check_limits(session, tenant_id, subject_id, vertices, limits or policy.ZoneLimits())
    zone_id = uuid.uuid4()
    session.execute(
        sql.INSERT_ZONE,
        {"tenant_id": tenant_id, "zone_id": zone_id, "name": name, "subject_id": subject_id,
         "geometry": jsontext.dumps(geometry), "radius_m": radius_m, "actor": actor,
         "drawn": drawn, "area": hidden.area_wkt, "reach": hidden.reach_wkt,
         "trim_m": hidden.trim_m, "salt": hidden.salt, "hiding": hiding.name, "vertices": vertices,
         "scale_m": hidden.scale_m},
    )
    audit.record(session, tenant_id, actor, "zone.create", target_type="zone",
                 target_id=zone_id, subject_id=subject_id, request_id=request_id,
                 details={"name": name, "type": geometry.get("type"), "radius_m": radius_m,
                          "vertices": vertices})
    return get_zone(session, zone_id)


def protection(zone: Zone) -> dict:
    """What an admin may know of how well a zone hides what it protects: numbers derived
    from the zone's size and the hiding rule, never from its own random draw."""
    hiding = {"offset": policy.OFFSET, "plain": policy.PLAIN}.get(zone.hiding)
    scale = zone.scale_m or 0.0
    protects = ({"kind": "circle", "radius_m": zone.radius_m} if zone.radius_m is not None
                else {"kind": "polygon", "equivalent_radius_m": round(scale, 1)})
    if hiding is None or hiding.offset == 0:
        return {"hiding": zone.hiding, "protects": protects, "located_no_better_than_m": 0.0,
                "confidence": policy.CONFIDENCE, "centre_estimate_off_by_m": 0.0,
                "hidden_beyond_edge_m": 0.0, "hidden_up_to_m": zone.radius_m}
    circle = zone.radius_m is not None
    return {"hiding": zone.hiding, "protects": protects,
            "located_no_better_than_m": round(policy.located_no_better_than(scale, hiding), 1),
            "confidence": policy.CONFIDENCE,
            "centre_estimate_off_by_m": round(policy.centre_estimate_off_by(scale, hiding), 1),
            "hidden_beyond_edge_m": round(policy.hidden_beyond_edge(scale, hiding), 1),
            "hidden_up_to_m": round(policy.hidden_up_to(scale, hiding), 1) if circle else None}


def get_zone(session: Session, zone_id: uuid.UUID) -> Zone:
    zone = session.scalar(select(Zone).where(Zone.zone_id == zone_id))
    if zone is None:
        raise NotFound("zone")
    return zone


def list_zones(session: Session, subject_id: uuid.UUID | None = None) -> list[Zone]:
    stmt = select(Zone).order_by(Zone.created_at)
    if subject_id is not None:
        stmt = stmt.where(Zone.subject_id == subject_id)
    return list(session.scalars(stmt))


def delete_zone(session: Session, actor: str, zone_id: uuid.UUID,
                request_id: str | None = None) -> None:
    zone = get_zone(session, zone_id)
    session.delete(zone)
    session.flush()
    audit.record(session, zone.tenant_id, actor, "zone.delete", target_type="zone",
                 target_id=zone_id, subject_id=zone.subject_id, request_id=request_id,
                 details={"name": zone.name})
