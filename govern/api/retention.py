"""/v1/retention/runs: evidence of every retention run, for auditors."""

from __future__ import annotations

from flask_smorest import Blueprint
from marshmallow import Schema, fields, validate

from govern.api.auth import require_member
from govern.api.common import db
from govern.api.schemas import Instant
from govern.domain.retention import list_runs as runs_between

blp = Blueprint("retention", __name__, url_prefix="/v1/retention",
                description="Retention evidence: what was aged, deleted and dropped, when.")


class RunEntrySchema(Schema):
    run_id = fields.UUID()
    started_at = fields.DateTime()
    finished_at = fields.DateTime()
    kind = fields.String(metadata={"description": "age, withdrawal, precision, hold_released, "
                                                  "held, zone, rollups, partition_drop"})
    purpose = fields.String(attribute="purpose_key", allow_none=True)
    cutoff = fields.DateTime(allow_none=True)
    aged = fields.Integer()
    deleted = fields.Integer()
    dropped = fields.Integer()
    details = fields.Dict()


class RunQuery(Schema):
    from_ = Instant(data_key="from", load_default=None)
    to = Instant(load_default=None)
    limit = fields.Integer(load_default=200, validate=validate.Range(min=1, max=1000))


class RunListSchema(Schema):
    runs = fields.List(fields.Nested(RunEntrySchema))


@blp.route("/runs")
@require_member("owner", "admin", "auditor")
@blp.arguments(RunQuery, location="query")
@blp.response(200, RunListSchema)
def list_runs(query):
    """Per run, tenant and purpose: how many pings were aged or deleted, up to what cut-off."""
    return {"runs": runs_between(db(), query["from_"], query["to"], query["limit"])}
