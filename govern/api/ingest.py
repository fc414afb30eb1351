"""Ingest in the formats of apps people already use, posted unchanged.

OwnTracks (HTTP mode), Traccar Client (OsmAnd protocol, query/form or JSON), Transistor
background-geolocation and Overland. Each is converted to native pings and governed
exactly like POST /v1/pings; the answer is what each app expects.
"""

from __future__ import annotations

import uuid

from flask import Response, g, jsonify, request
from flask_smorest import Blueprint

from govern.api.common import db
from govern.api.pings import check_batch_size, ingest_for_device
from govern.app import NON_JSON_ENDPOINTS
from govern.auth import Principal, failed_authentication, load_principal, presented_token
from govern.domain import subjects
from govern.errors import ApiError, NotFound
from govern.ingest import formats

blp = Blueprint("ingest", __name__, url_prefix="/v1/ingest",
                description="Ingest in existing apps' native formats.")


def _device_principal() -> Principal:
    principal = load_principal(presented_token())
    if principal.kind != "device":
        raise ApiError(403, "This endpoint needs a device token.")
    return principal


def _json_body():
    body = request.get_json(silent=True)
    if body is None:
        raise ApiError(400, "The body must be JSON.", code="bad_request")
    return body


def _converted(fn, *args):
    try:
        return fn(*args)
    except formats.FormatError as exc:
        raise ApiError(422, exc.message, details={"body": [exc.message]}) from exc


def _principal_for_identifier(identifier: str, tenant_id: uuid.UUID | None) -> Principal:
    """OsmAnd names the device, nothing more: find it in the URL's tenant (or through its
    legacy global route). A miss is a failed authentication."""
    device = subjects.osmand_device(db(), identifier, tenant_id)
    if device is None:
        raise failed_authentication(NotFound("device"))
    principal = Principal(tenant_id=device.tenant_id, kind="device", token_id=None,
                          device_id=device.device_id, subject_id=device.subject_id)
    g.principal = principal
    return principal


@blp.route("/owntracks", methods=["POST"])
@blp.doc(security=[{"basicAuth": []}])
def owntracks():
    """OwnTracks HTTP mode. Basic auth: any user, the device token as password. Answers []."""
    _device_principal()
    items, _ignored = _converted(formats.from_owntracks, _json_body())
    ingest_for_device(check_batch_size(items))
    return jsonify([])


_OSMAND_FIELDS = {
    "id": ("string", "the enrolled device identifier"),
    "lat": ("number", "latitude"),
    "lon": ("number", "longitude"),
    "timestamp": ("string", "epoch seconds, epoch milliseconds or ISO-8601"),
    "speed": ("number", "knots"),
    "bearing": ("number", "degrees"),
    "altitude": ("number", "metres"),
    "accuracy": ("number", "metres"),
    "batt": ("number", "percent"),
}
_OSMAND_REQUIRED = ("id", "lat", "lon", "timestamp")
_OSMAND_FORM = {
    "type": "object", "required": list(_OSMAND_REQUIRED),
    "properties": {k: {"type": t, "description": d} for k, (t, d) in _OSMAND_FIELDS.items()},
}


_OSMAND_GET_DOC = dict(
    security=[], parameters=[
        {"in": "query", "name": k, "required": k in _OSMAND_REQUIRED,
         "schema": {"type": t}, "description": d} for k, (t, d) in _OSMAND_FIELDS.items()],
    responses={"200": {"description": "stored, dropped or rejected: the protocol has no "
                                      "per-ping answer"}})
_OSMAND_POST_DOC = dict(
    security=[], requestBody={"content": {
        "application/x-www-form-urlencoded": {"schema": _OSMAND_FORM},
        "application/json": {"schema": {
            "type": "object", "required": ["device_id", "location"],
            "properties": {"device_id": {"type": "string"},
                           "location": {"type": "object"}}}}}},
    responses={"200": {"description": "accepted for governance"}})


@blp.route("/osmand/<uuid:tenant_id>", methods=["GET"])
@blp.doc(**_OSMAND_GET_DOC)
def osmand_tenant_get(tenant_id):
    """Traccar Client (OsmAnd protocol) as a query string; the identifier is looked up in
    the tenant the path names."""
    return osmand(tenant_id)


@blp.route("/osmand/<uuid:tenant_id>", methods=["POST"])
@blp.doc(**_OSMAND_POST_DOC)
def osmand_tenant_post(tenant_id):
    """Traccar Client (OsmAnd protocol) as a form post, or its JSON variant, for the tenant
    the path names."""
    return osmand(tenant_id)


@blp.route("/osmand", methods=["GET"])
@blp.doc(**_OSMAND_GET_DOC)
def osmand_get():
    """Traccar Client (OsmAnd protocol) as a query string, tenant-less (legacy: only devices
    enrolled before tenant URLs, or with a generated identifier)."""
    return osmand()


@blp.route("/osmand", methods=["POST"])
@blp.doc(**_OSMAND_POST_DOC)
def osmand_post():
    """Traccar Client (OsmAnd protocol) as a form post, or its JSON variant, tenant-less
    (legacy)."""
    return osmand()


def osmand(tenant_id: uuid.UUID | None = None):
    """Traccar Client (OsmAnd protocol): query or form parameters, or the JSON variant.
    The device is its enrolled identifier; the protocol carries no secret."""
    if request.mimetype == "application/json":
        identifier, items = _converted(formats.from_osmand_json, _json_body())
    else:
        params = {**request.args.to_dict(), **request.form.to_dict()}
        identifier, item = _converted(formats.from_osmand, params)
        items = [item]
    _principal_for_identifier(identifier, tenant_id)
    ingest_for_device(check_batch_size(items))
    return Response("", status=200)


@blp.route("/transistor", methods=["POST"])
def transistor():
    """Transistor background-geolocation: {"location": {...}} or {"location": [...]}."""
    _device_principal()
    items = _converted(formats.from_transistor, _json_body())
    return jsonify(ingest_for_device(check_batch_size(items)))


@blp.route("/overland", methods=["POST"])
def overland():
    """Overland: {"locations": [GeoJSON Feature, ...]}. Answers {"result": "ok"}."""
    _device_principal()
    items = _converted(formats.from_overland, _json_body())
    ingest_for_device(check_batch_size(items))
    return jsonify({"result": "ok"})


NON_JSON_ENDPOINTS.update({"ingest.osmand_get", "ingest.osmand_post",
                           "ingest.osmand_tenant_get", "ingest.osmand_tenant_post"})
