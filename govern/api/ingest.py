"""Ingest in the formats of apps people already use, posted unchanged.

OwnTracks (HTTP mode), Traccar Client (OsmAnd protocol, query/form or JSON), Transistor
background-geolocation and Overland. Each is converted to native pings and governed
exactly like POST /v1/pings; the answer is what each app expects. A JSON body is read as
JSON whatever its Content-Type says (OwnTracks' own test recipe posts it with `curl
--data`, i.e. labelled application/x-www-form-urlencoded). A request refused as a whole
(4xx) once its device is known is counted in that device's ingest diagnostics, because the
app itself may drop the point whatever the answer.
"""

from __future__ import annotations

import functools
import uuid

from flask import Response, current_app, g, jsonify, request
from flask_smorest import Blueprint

from govern.api.auth import failed_authentication, presented_token
from govern.api.bodies import check_json_text, non_json_body
from govern.api.common import commit, db, request_now
from govern.api.pings import check_batch_size, device_request, ingest_for_device
from govern.auth import Principal
from govern.domain import diagnostics, subjects
from govern.errors import ApiError, GovernError, NotFound, as_api_error
from govern.ingest import formats

blp = Blueprint("ingest", __name__, url_prefix="/v1/ingest",
                description="Ingest in existing apps' native formats.")


_NOT_JSON = "The body must be JSON."


def _json_body(empty=None):
    """The body parsed as (strict) JSON, whatever its label; `empty` for a blank body when
    the app may send one, else 400."""
    data = request.get_data(cache=True)
    if not data.strip():
        if empty is not None:
            return empty
        raise ApiError(400, _NOT_JSON, code="bad_request", details={"body": ["is empty"]})
    try:
        body = current_app.json.loads(data)
    except ValueError:  # also bad UTF-8, duplicate keys, NaN, nesting past the limit
        raise ApiError(400, _NOT_JSON, code="bad_request",
                       details={"body": ["is not JSON"]}) from None
    check_json_text(data)
    return body


def _counted(source: str):
    """Count a request refused as a whole in its device's diagnostics, then answer as before.

    Only once a device is known (its token or identifier checked); the refusal is recorded
    in a fresh transaction, since nothing of the refused request may be kept."""
    def wrap(fn):
        @functools.wraps(fn)
        def handler(*args, **kwargs):
            try:
                return fn(*args, **kwargs)
            except (ApiError, GovernError) as raised:
                exc = as_api_error(raised)
                principal = getattr(g, "principal", None)
                if 400 <= exc.status < 500 and principal is not None \
                        and principal.kind == "device":
                    now = request_now()
                    fields = sorted(exc.details) if isinstance(exc.details, dict) else None
                    pending = g.pop("device_request", None)
                    if pending is not None:
                        pending.close()  # its transaction stores nothing of this request
                    db().rollback()
                    diagnostics.record(db(), principal.tenant_id, principal.device_id,
                                       diagnostics.refused_request(source, exc.code,
                                                                   exc.message, fields, now),
                                       now)
                    commit()
                elif exc.status == 404:
                    diagnostics.REFUSED_REQUESTS.labels(source, "unknown_device").inc()
                raise
        return handler
    return wrap


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
@non_json_body
@blp.doc(security=[{"basicAuth": []}])
@_counted("owntracks")
def owntracks():
    """OwnTracks HTTP mode. Basic auth: any user, the device token as password. Answers [],
    also to an empty body (the app may post one, and retries or drops the point on a 4xx).
    Never rate-limited per token: the app cannot retry a 429 and would delete the point."""
    device_request(presented_token())
    items, ignored = _converted(formats.from_owntracks, _json_body(empty=[]))
    ingest_for_device(check_batch_size(items), source="owntracks", ignored=ignored)
    return jsonify([])


_OSMAND_FIELDS = {
    "id": ("string", "the enrolled device identifier (or deviceid)"),
    "lat": ("number", "latitude"),
    "lon": ("number", "longitude"),
    "location": ("string", "latitude,longitude, instead of lat and lon"),
    "timestamp": ("string", "epoch seconds, epoch milliseconds or ISO-8601; absent: the "
                            "receipt time (time_source server)"),
    "speed": ("number", "knots; negative: unknown"),
    "bearing": ("number", "degrees (or heading); negative: unknown"),
    "altitude": ("number", "metres"),
    "accuracy": ("number", "metres (or hacc); 0: unknown"),
    "batt": ("number", "percent; negative: unknown"),
}
_OSMAND_REQUIRED = ("id",)
_OSMAND_FORM = {
    "type": "object", "required": list(_OSMAND_REQUIRED),
    "properties": {k: {"type": t, "description": d} for k, (t, d) in _OSMAND_FIELDS.items()},
}


_OSMAND_GET_DOC = dict(
    security=[], parameters=[
        {"in": "query", "name": k, "required": k in _OSMAND_REQUIRED,
         "schema": {"type": t}, "description": d} for k, (t, d) in _OSMAND_FIELDS.items()],
    responses={"200": {"description": "stored, dropped or rejected: the protocol has no "
                                      "per-ping answer (see GET /v1/devices/{id}/ingest)"}})
_OSMAND_POST_DOC = dict(
    security=[], requestBody={"content": {
        "application/x-www-form-urlencoded": {"schema": _OSMAND_FORM},
        "application/json": {"schema": {
            "type": "object", "required": ["device_id", "location"],
            "properties": {"device_id": {"type": "string"},
                           "location": {"type": "object"}}}}}},
    responses={"200": {"description": "accepted for governance"}})


@blp.route("/osmand/<uuid:tenant_id>", methods=["GET"])
@non_json_body
@blp.doc(**_OSMAND_GET_DOC)
def osmand_tenant_get(tenant_id):
    """Traccar Client (OsmAnd protocol) as a query string; the identifier is looked up in
    the tenant the path names."""
    return osmand(tenant_id)


@blp.route("/osmand/<uuid:tenant_id>", methods=["POST"])
@non_json_body
@blp.doc(**_OSMAND_POST_DOC)
def osmand_tenant_post(tenant_id):
    """Traccar Client (OsmAnd protocol) as a form post, or its JSON variant, for the tenant
    the path names."""
    return osmand(tenant_id)


@blp.route("/osmand", methods=["GET"])
@non_json_body
@blp.doc(**_OSMAND_GET_DOC)
def osmand_get():
    """Traccar Client (OsmAnd protocol) as a query string, tenant-less (legacy: only devices
    enrolled before tenant URLs, or with a generated identifier)."""
    return osmand()


@blp.route("/osmand", methods=["POST"])
@non_json_body
@blp.doc(**_OSMAND_POST_DOC)
def osmand_post():
    """Traccar Client (OsmAnd protocol) as a form post, or its JSON variant, tenant-less
    (legacy)."""
    return osmand()


@_counted("osmand")
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
    ingest_for_device(check_batch_size(items), source="osmand")
    return Response("", status=200)


@blp.route("/transistor", methods=["POST"])
@non_json_body
@_counted("transistor")
def transistor():
    """Transistor background-geolocation: {"location": {...}} or {"location": [...]}."""
    device_request(presented_token())
    items = _converted(formats.from_transistor, _json_body())
    return jsonify(ingest_for_device(check_batch_size(items), source="transistor"))


@blp.route("/overland", methods=["POST"])
@non_json_body
@_counted("overland")
def overland():
    """Overland: {"locations": [GeoJSON Feature, ...]}. Answers {"result": "ok"}."""
    device_request(presented_token())
    items = _converted(formats.from_overland, _json_body())
    ingest_for_device(check_batch_size(items), source="overland")
    return jsonify({"result": "ok"})

