"""POST /v1/pings: govern's native batch format (device token)."""

from __future__ import annotations

from flask import current_app, g, request
from flask_smorest import Blueprint
from marshmallow import Schema, fields

from govern.api.auth import bearer_token, failed_authentication, principal, unauthenticated
from govern.api.common import commit, db, request_now
from govern.domain.ingest import ingest
from govern.domain.single import DeviceRequest, NotADevice, TokenGone
from govern.errors import ApiError

blp = Blueprint("pings", __name__, url_prefix="/v1/pings",
                description="Batches of pings in govern's native format.")


class PingInSchema(Schema):
    """Documented for OpenAPI; validated per ping by govern.ingest.validate (same rules)."""

    id = fields.String(metadata={"description": "client id, for retries (1-100 chars)"})
    t = fields.String(required=True, metadata={"description": "ISO-8601 with offset"})
    lat = fields.Float(required=True)
    lon = fields.Float(required=True)
    acc = fields.Float(metadata={"description": "metres, 0-100000"})
    alt = fields.Float()
    speed = fields.Float(metadata={"description": "m/s"})
    heading = fields.Float()
    battery = fields.Float(metadata={"description": "percent"})
    activity = fields.String()


class BatchSchema(Schema):
    pings = fields.List(fields.Nested(PingInSchema), required=True)


class RejectedSchema(Schema):
    index = fields.Integer()
    id = fields.Raw(allow_none=True)
    errors = fields.Dict()


class IngestResultSchema(Schema):
    accepted = fields.Integer()
    duplicates = fields.Integer()
    dropped = fields.Dict(keys=fields.String(), values=fields.Integer())
    rejected = fields.List(fields.Nested(RejectedSchema))


def batch_items(body, key: str) -> list:
    """The list of items under `key`, or a 422/413 that says what is wrong with the body."""
    if not isinstance(body, dict) or not isinstance(body.get(key), list):
        raise ApiError(422, f"The body must be a JSON object with a '{key}' list.",
                       details={key: ["must be a list"]})
    return check_batch_size(body[key])


def check_batch_size(items: list) -> list:
    limit = current_app.config["GOVERN"].max_batch_pings
    if len(items) > limit:
        raise ApiError(413, f"A batch may hold at most {limit} pings; split it.",
                       code="batch_too_large", details={"max": limit, "got": len(items)})
    return items


def device_request(token: str | None) -> DeviceRequest:
    """Authenticate a device token for an ingest request on the pipelined path
    (govern.domain.single), answering as govern.api.auth.load_principal and require_device
    do: 401 for no token or one that is unknown, revoked or expired, 403 for a member's.
    The request's connection is returned at teardown (govern.api.common)."""
    if not token:
        raise unauthenticated()
    ext = current_app.extensions["govern"]
    req = g.device_request = DeviceRequest(ext.engine, token, ext.config.token_touch_seconds,
                                           ext.group)
    try:
        principal_ = req.authenticate(keep_open=False)
    except NotADevice:
        raise ApiError(403, "This endpoint needs a device token.") from None
    if principal_ is None:
        raise failed_authentication(unauthenticated("The token is unknown, revoked or expired."))
    g.principal = principal_
    return req


def ingest_for_device(items: list, source: str = "native", ignored: int = 0) -> dict:
    """Ingest a batch for the request's device: on its pipelined connection when the device
    authenticated by token (device_request), else (OsmAnd) in the request's session."""
    req = g.get("device_request")
    if req is not None and req.principal is not None:
        try:
            result = req.ingest(items, now=request_now(), source=source, ignored=ignored)
        except TokenGone:
            raise failed_authentication(
                unauthenticated("The token is unknown, revoked or expired.")) from None
        return result.as_dict()
    p = principal()
    ext = current_app.extensions["govern"]
    result = ingest(db(), ext.engine, p.tenant_id, p.device_id, p.subject_id, items,
                    now=request_now(), touch_device=p.token_id is None, source=source,
                    ignored=ignored)
    commit()
    return result.as_dict()


@blp.route("", methods=["POST"])
@blp.doc(requestBody={"content": {"application/json": {"schema": BatchSchema}}})
@blp.response(200, IngestResultSchema)
def post_pings():
    """Post a batch. Each ping is judged on its own; the answer says what became of each."""
    device_request(bearer_token())
    body = request.get_json(silent=False)
    return ingest_for_device(batch_items(body, "pings"))
