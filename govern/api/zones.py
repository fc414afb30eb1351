"""/v1/zones: privacy zones, tenant-wide or per subject; nothing recorded inside is kept."""

from __future__ import annotations

from flask import current_app
from flask_smorest import Blueprint
from marshmallow import Schema, fields, validate

from govern.api.auth import require_member
from govern.api.common import actor_kwargs, commit, db
from govern.domain import zones

blp = Blueprint("zones", __name__, url_prefix="/v1/zones",
                description="Privacy zones: polygons, or circles (Point + radius_m).")

WRITERS = ("owner", "admin")
READERS = ("owner", "admin", "auditor")


class ZoneSchema(Schema):
    zone_id = fields.UUID(dump_only=True)
    name = fields.String(required=True, validate=validate.Length(min=1, max=200))
    subject_id = fields.UUID(load_default=None, allow_none=True,
                             metadata={"description": "null: applies to every subject"})
    geometry = fields.Raw(required=True,
                          metadata={"description": "GeoJSON Polygon, MultiPolygon or Point"})
    radius_m = fields.Raw(load_default=None, allow_none=True,
                          metadata={"description": "with a Point: circle radius, 0 < r <= 50000"})
    vertices = fields.Integer(dump_only=True, metadata={
        "description": "vertices of the stored hidden region (counted by the zone limits)"})
    protection = fields.Method("_protection", dump_only=True, metadata={
        "description": "what the zone protects and how well: with 'confidence', no reader "
                       "locates the protected place closer than 'located_no_better_than_m' "
                       "from any number of trips; a circle fitted through where trips appear and "
                       "vanish misses it by at least 'centre_estimate_off_by_m'; trips may be "
                       "hidden up to 'hidden_beyond_edge_m' beyond its edge (for a circle, "
                       "'hidden_up_to_m' from its centre). Derived from the zone's size, "
                       "never from its random offset, which no API returns."})
    created_at = fields.DateTime(dump_only=True)
    created_by = fields.String(dump_only=True)

    def _protection(self, zone):
        return zones.protection(zone)


class ZoneQuery(Schema):
    subject_id = fields.UUID(load_default=None)


class ZoneListSchema(Schema):
    zones = fields.List(fields.Nested(ZoneSchema))


@blp.route("")
@require_member(*READERS)
@blp.arguments(ZoneQuery, location="query")
@blp.response(200, ZoneListSchema)
def list_zones(query):
    return {"zones": zones.list_zones(db(), query["subject_id"])}


@blp.route("", methods=["POST"])
@require_member(*WRITERS)
@blp.arguments(ZoneSchema)
@blp.response(201, ZoneSchema)
def create_zone(body):
    """Add a zone. Invalid geometry answers 422 with the reason and where it is; a zone that
    would pass a zone limit answers 409 `zone_limit` naming it."""
    ctx = actor_kwargs()
    zone = zones.create_zone(
        db(), ctx["tenant_id"], ctx["actor"], name=body["name"], geometry=body["geometry"],
        radius_m=body["radius_m"], subject_id=body["subject_id"],
        max_vertices=current_app.config["GOVERN"].max_zone_vertices,
        limits=current_app.config["GOVERN"].zone_limits,
        request_id=ctx["request_id"])
    commit()
    return zone


@blp.route("/<uuid:zone_id>")
@require_member(*READERS)
@blp.response(200, ZoneSchema)
def get_zone(zone_id):
    return zones.get_zone(db(), zone_id)


@blp.route("/<uuid:zone_id>", methods=["DELETE"])
@require_member(*WRITERS)
@blp.response(204)
def delete_zone(zone_id):
    ctx = actor_kwargs()
    zones.delete_zone(db(), ctx["actor"], zone_id, ctx["request_id"])
    commit()
