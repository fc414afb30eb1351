"""/v1/sites: named places (customer sites, depots) for visit and origin-destination
reports. Polygons, or circles (Point + radius_m), validated like privacy zones; sites are
not zones: pings inside them are kept."""

from __future__ import annotations

from flask import current_app
from flask_smorest import Blueprint
from marshmallow import Schema, fields, validate

from govern.api.auth import require_member
from govern.api.common import actor_kwargs, commit, db
from govern.domain import sites

blp = Blueprint("sites", __name__, url_prefix="/v1/sites",
                description="Sites: named places that stops and trips are attributed to.")

WRITERS = ("owner", "admin")
READERS = ("owner", "admin", "analyst")


class SiteSchema(Schema):
    site_id = fields.UUID(dump_only=True)
    name = fields.String(required=True, validate=validate.Length(min=1, max=200))
    kind = fields.String(load_default=None, allow_none=True,
                         validate=validate.Length(min=1, max=40),
                         metadata={"description": "free label, e.g. 'customer', 'depot'"})
    geometry = fields.Raw(required=True,
                          metadata={"description": "GeoJSON Polygon, MultiPolygon or Point"})
    radius_m = fields.Raw(load_default=None, allow_none=True,
                          metadata={"description": "with a Point: circle radius, 0 < r <= 50000"})
    created_at = fields.DateTime(dump_only=True)
    created_by = fields.String(dump_only=True)
    updated_at = fields.DateTime(dump_only=True)


class SitePatchSchema(Schema):
    name = fields.String(validate=validate.Length(min=1, max=200))
    kind = fields.String(allow_none=True, validate=validate.Length(min=1, max=40))
    geometry = fields.Raw(metadata={"description": "replaces the shape (with radius_m for a "
                                                   "Point)"})
    radius_m = fields.Raw(allow_none=True)


class SiteListSchema(Schema):
    sites = fields.List(fields.Nested(SiteSchema))


def _max_vertices() -> int:
    return current_app.config["GOVERN"].max_zone_vertices


@blp.route("")
@require_member(*READERS)
@blp.response(200, SiteListSchema)
def list_sites():
    return {"sites": sites.list_sites(db())}


@blp.route("", methods=["POST"])
@require_member(*WRITERS)
@blp.arguments(SiteSchema)
@blp.response(201, SiteSchema)
def create_site(body):
    """Add a site; stops and trip ends inside it are attributed to it, past ones too.
    Invalid geometry answers 422 with the reason and where it is."""
    ctx = actor_kwargs()
    site = sites.create_site(db(), ctx["tenant_id"], ctx["actor"], name=body["name"],
                             geometry=body["geometry"], radius_m=body["radius_m"],
                             kind=body["kind"], max_vertices=_max_vertices(),
                             request_id=ctx["request_id"])
    commit()
    return site


@blp.route("/<uuid:site_id>")
@require_member(*READERS)
@blp.response(200, SiteSchema)
def get_site(site_id):
    return sites.get_site(db(), site_id)


@blp.route("/<uuid:site_id>", methods=["PATCH"])
@require_member(*WRITERS)
@blp.arguments(SitePatchSchema)
@blp.response(200, SiteSchema)
def update_site(body, site_id):
    """Rename or redraw a site; attribution follows the new shape."""
    ctx = actor_kwargs()
    site = sites.update_site(db(), ctx["tenant_id"], ctx["actor"], site_id, body,
                             _max_vertices(), ctx["request_id"])
    commit()
    return site


@blp.route("/<uuid:site_id>", methods=["DELETE"])
@require_member(*WRITERS)
@blp.response(204)
def delete_site(site_id):
    ctx = actor_kwargs()
    sites.delete_site(db(), ctx["tenant_id"], ctx["actor"], site_id, ctx["request_id"])
    commit()
