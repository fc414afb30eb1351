"""Privacy zones: nothing recorded inside one is kept. Stored as a MultiPolygon in PostGIS;
circles are buffered on the spheroid (geography), so a radius is true metres anywhere."""

from __future__ import annotations

import math
import uuid

import orjson
from sqlalchemy import select, text
from sqlalchemy.orm import Session

from govern.domain import audit
from govern.domain.subjects import get_subject
from govern.errors import Invalid, NotFound
from govern.models import Zone
from govern.policy.zones import GeometryInvalid, validate_zone

AREA_SQL = {
    "circle": "ST_Multi(ST_SetSRID(ST_GeomFromText(:wkt), 4326))",
    "polygon": "ST_Multi(ST_Force2D(ST_SetSRID(ST_GeomFromGeoJSON(:geojson), 4326)))",
}
CIRCLE_SEGMENTS = 64

# Points around the centre at `radius` on the spheroid (PostGIS ST_Project), the radius
# stretched so the 64-gon circumscribes the circle: every point within the radius is inside.
_RING = text(
    """
    SELECT ST_X(p::geometry) AS lon, ST_Y(p::geometry) AS lat
    FROM generate_series(0, :n - 1) AS k,
         LATERAL ST_Project(ST_SetSRID(ST_MakePoint(:lon, :lat), 4326)::geography,
                            :radius / cos(pi() / :n), 2 * pi() * k / :n) AS p
    ORDER BY k
    """
)
_POLE_DISTANCE = text(
    "SELECT ST_Distance(ST_SetSRID(ST_MakePoint(:lon, :lat), 4326)::geography, "
    "ST_SetSRID(ST_MakePoint(0, :pole), 4326)::geography)"
)


def circle_wkt(session: Session, lon: float, lat: float, radius: float) -> str:
    """A circle as lon/lat polygons that stay valid across the antimeridian and the poles.

    Across the antimeridian the ring is unwrapped around the centre and split in two; a
    circle that contains a pole becomes the whole polar cap down to its lowest latitude
    (larger than the circle: a zone errs on the side of keeping nothing)."""
    from shapely.affinity import translate
    from shapely.geometry import MultiPolygon, Polygon, box

    ring = session.execute(_RING, {"lon": lon, "lat": lat, "radius": radius,
                                   "n": CIRCLE_SEGMENTS}).all()
    for pole in (90.0, -90.0):
        if session.execute(_POLE_DISTANCE, {"lon": lon, "lat": lat, "pole": pole}).scalar() \
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
    if geometry.get("type") == "Point":
        lon, lat = geometry["coordinates"][:2]
        return AREA_SQL["circle"], {"wkt": circle_wkt(session, lon, lat, float(radius_m))}
    return AREA_SQL["polygon"], {"geojson": orjson.dumps(geometry).decode()}


def validated(geometry: dict, radius_m: float | None, max_vertices: int) -> None:
    try:
        validate_zone(geometry, radius_m, max_vertices)
    except GeometryInvalid as exc:
        raise Invalid(exc.message, exc.details, code="invalid_geometry") from exc


def create_zone(session: Session, tenant_id: uuid.UUID, actor: str, *, name: str,
                geometry: dict, radius_m: float | None, subject_id: uuid.UUID | None,
                max_vertices: int, request_id: str | None = None) -> Zone:
    validated(geometry, radius_m, max_vertices)
    if subject_id is not None:
        get_subject(session, subject_id)
    expr, params = area_expression(session, geometry, radius_m)
    zone_id = uuid.uuid4()
    session.execute(
        text(f"INSERT INTO zones (tenant_id, zone_id, name, subject_id, geometry, radius_m, "
             f"area, created_by) VALUES (:tenant_id, :zone_id, :name, :subject_id, "
             f"CAST(:geometry AS jsonb), :radius_m, {expr}, :actor)"),
        {"tenant_id": tenant_id, "zone_id": zone_id, "name": name, "subject_id": subject_id,
         "geometry": orjson.dumps(geometry).decode(), "radius_m": radius_m, "actor": actor,
         **params},
    )
    audit.record(session, tenant_id, actor, "zone.create", target_type="zone",
                 target_id=zone_id, subject_id=subject_id, request_id=request_id,
                 details={"name": name, "type": geometry.get("type"), "radius_m": radius_m})
    return get_zone(session, zone_id)


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
