"""POST /v1/pings: govern's native batch format (device token)."""

from __future__ import annotations

from flask import current_app, request
from flask_smorest import Blueprint
from marshmallow import Schema, fields

from govern.api.auth import principal, require_device
from govern.api.common import commit, db, request_now
from govern.domain.ingest import ingest
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


def ingest_for_device(items: list, source: str = "native", ignored: int = 0) -> dict:
    p = principal()
    ext = current_app.extensions["govern"]
    result = ingest(db(), ext.engine, p.tenant_id, p.device_id, p.subject_id, items,
                    now=request_now(), touch_device=p.token_id is None, source=source,
                    ignored=ignored)
    commit()
    return result.as_dict()


@blp.route("", methods=["POST"])
@require_device
@blp.doc(requestBody={"content": {"application/json": {"schema": BatchSchema}}})
@blp.response(200, IngestResultSchema)
def post_pings():
    """Post a batch. Each ping is judged on its own; the answer says what became of each."""
    body = request.get_json(silent=False)
    return ingest_for_device(batch_items(body, "pings"))
