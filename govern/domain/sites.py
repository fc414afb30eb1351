"""Sites: named places (customer sites, depots) that stops and trip ends are attributed to.
Drawn like privacy zones (GeoJSON polygons, or a point and a radius buffered on the
spheroid) and validated by the same rules, but they are not zones: pings inside are kept.

Attribution follows the sites: creating, redrawing or deleting a site re-attributes the
stops and trip ends around it (from their stored points, at their precision)."""

from __future__ import annotations

import uuid

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from govern import jsontext
from govern.domain import audit
from govern.domain.zones import area_expression, validated
from govern.exceptions import Conflict, NotFound
from govern.sql import sites as site_sql
from govern.sql import trips as sql


def _reattribute(session: Session, tenant_id: uuid.UUID, site_id: uuid.UUID, box) -> dict:
    params = {"tenant_id": tenant_id, "site_id": site_id, "xmin": box.xmin, "xmax": box.xmax,
              "ymin": box.ymin, "ymax": box.ymax}
    counts = [session.execute(stmt, params).rowcount for stmt in sql.REATTRIBUTE]
    return {"stops": counts[0], "trip_ends": counts[1] + counts[2]}


def _box(session: Session, site_id: uuid.UUID):
    return session.execute(sql.SITE_BOX, {"tenant_id": session.info.get("tenant_id"),
                                          "site_id": site_id}).first()


def get_site(session: Session, site_id: uuid.UUID) -> dict:
    row = session.execute(site_sql.GET_SITE, {"t": session.info.get("tenant_id"),
                                              "s": site_id}).first()
    if row is None:
        raise NotFound("site")
    return dict(row._mapping)


def list_sites(session: Session) -> list[dict]:
    rows = session.execute(site_sql.LIST_SITES, {"t": session.info.get("tenant_id")})
    return [dict(r._mapping) for r in rows]


def _unique(session: Session, fn):
    try:
        with session.begin_nested():
            return fn()
    except IntegrityError as exc:
        if "sites_tenant_id_name_key" in str(exc.orig):
            raise Conflict("A site with this name exists.", "duplicate_name") from exc
        raise


def create_site(session: Session, tenant_id: uuid.UUID, actor: str, *, name: str,
                geometry: dict, radius_m: float | None, kind: str | None,
                max_vertices: int, request_id: str | None = None) -> dict:
    validated(geometry, radius_m, max_vertices)
    expr, params = area_expression(session, geometry, radius_m)
    site_id = uuid.uuid4()
    _unique(session, lambda: session.execute(
        site_sql.insert_site(expr),
        {"t": tenant_id, "s": site_id, "name": name, "kind": kind,
         "geometry": jsontext.dumps(geometry), "radius_m": radius_m, "actor": actor,
         **params}))
    moved = _reattribute(session, tenant_id, site_id, _box(session, site_id))
    audit.record(session, tenant_id, actor, "site.create", target_type="site",
                 target_id=site_id, request_id=request_id,
                 details={"name": name, "type": geometry.get("type"), "radius_m": radius_m,
                          "reattributed": moved})
    return get_site(session, site_id)


def update_site(session: Session, tenant_id: uuid.UUID, actor: str, site_id: uuid.UUID,
                changes: dict, max_vertices: int, request_id: str | None = None) -> dict:
    """Rename, re-kind or redraw a site (a new geometry replaces the old one whole)."""
    before = get_site(session, site_id)
    old_box = _box(session, site_id)
    sets, params = ["updated_at = now()"], {"s": site_id}
    for key in ("name", "kind"):
        if key in changes:
            sets.append(f"{key} = :{key}")
            params[key] = changes[key]
    redraw = "geometry" in changes
    if redraw:
        radius = changes.get("radius_m")
        validated(changes["geometry"], radius, max_vertices)
        expr, area_params = area_expression(session, changes["geometry"], radius)
        sets += ["geometry = CAST(:geometry AS jsonb)", "radius_m = :radius_m",
                 f"area = {expr}"]
        params.update(area_params, geometry=jsontext.dumps(changes["geometry"]),
                      radius_m=radius)
    _unique(session, lambda: session.execute(
        site_sql.update_site(sets), params))
    moved = {}
    if redraw:
        new_box = _box(session, site_id)
        union = type("Box", (), {"xmin": min(old_box.xmin, new_box.xmin),
                                 "xmax": max(old_box.xmax, new_box.xmax),
                                 "ymin": min(old_box.ymin, new_box.ymin),
                                 "ymax": max(old_box.ymax, new_box.ymax)})
        moved = _reattribute(session, tenant_id, site_id, union)
    audit.record(session, tenant_id, actor, "site.update", target_type="site",
                 target_id=site_id, request_id=request_id,
                 details={"changed": sorted(k for k in changes if k != "radius_m"
                                            or redraw),
                          "name": {"from": before["name"], "to": changes.get(
                              "name", before["name"])}, "reattributed": moved})
    return get_site(session, site_id)


def delete_site(session: Session, tenant_id: uuid.UUID, actor: str, site_id: uuid.UUID,
                request_id: str | None = None) -> None:
    site = get_site(session, site_id)
    box = _box(session, site_id)
    for stmt in sql.UNLINK_SITE:  # ON DELETE SET NULL, said explicitly (see sql.trips)
        session.execute(stmt, {"tenant_id": tenant_id, "site_id": site_id})
    session.execute(site_sql.DELETE_SITE, {"t": tenant_id, "s": site_id})
    moved = _reattribute(session, tenant_id, site_id, box)  # to an enclosing site, or to none
    audit.record(session, tenant_id, actor, "site.delete", target_type="site",
                 target_id=site_id, request_id=request_id,
                 details={"name": site["name"], "reattributed": moved})
