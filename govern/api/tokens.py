"""/v1/tokens: a member's own API tokens; admins may revoke any in their tenant."""

from __future__ import annotations

import datetime as dt

from flask_smorest import Blueprint
from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from govern.api.auth import principal, require_member
from govern.api.common import audit_event, commit, db, request_now, row_dict
from govern.api.schemas import Instant, StrictInteger
from govern.domain import tokens
from govern.errors import ApiError

blp = Blueprint("tokens", __name__, url_prefix="/v1/tokens",
                description="API tokens: created and revoked by their member; shown once.")

ADMINS = ("owner", "admin")


class TokenSchema(Schema):
    token_id = fields.UUID(dump_only=True)
    member_id = fields.UUID(dump_only=True)
    name = fields.String(load_default="", validate=validate.Length(max=200))
    hint = fields.String(dump_only=True, metadata={"description": "first characters of the secret"})
    created_at = fields.DateTime(dump_only=True)
    expires_at = Instant(allow_none=True, load_default=None)
    expires_in_days = StrictInteger(load_only=True, load_default=None,
                                     validate=validate.Range(min=1, max=tokens.MAX_TOKEN_DAYS))
    revoked_at = fields.DateTime(dump_only=True, allow_none=True)
    last_used_at = fields.DateTime(dump_only=True, allow_none=True)

    @validates_schema
    def _one_expiry(self, data, **kwargs):
        if data.get("expires_at") and data.get("expires_in_days"):
            raise ValidationError("give expires_at or expires_in_days, not both", "expires_at")


class NewTokenSchema(TokenSchema):
    token = fields.String(dump_only=True, metadata={"description": "shown once"})


class TokenListQuery(Schema):
    all = fields.Boolean(load_default=False,
                         metadata={"description": "admins: every member's tokens"})


class TokenListSchema(Schema):
    tokens = fields.List(fields.Nested(TokenSchema))


@blp.route("")
@require_member()
@blp.arguments(TokenListQuery, location="query")
@blp.response(200, TokenListSchema)
def list_tokens(query):
    """Your tokens (never their secrets); admins may pass all=true."""
    p = principal()
    if query["all"] and p.role not in ADMINS:
        raise ApiError(403, "Only owners and admins may list every member's tokens.")
    return {"tokens": tokens.list_member_tokens(db(), None if query["all"] else p.member_id)}


@blp.route("", methods=["POST"])
@require_member()
@blp.arguments(TokenSchema, required=False)
@blp.response(201, NewTokenSchema)
def create_token(body):
    """Create a token for yourself. The secret is in this response only."""
    p = principal()
    expires_at = body.get("expires_at")
    if body.get("expires_in_days"):
        expires_at = request_now() + dt.timedelta(days=body["expires_in_days"])
    secret, row = tokens.issue_member_token(db(), p.tenant_id, p.member_id, body["name"],
                                            expires_at)
    audit_event("token.create", target_type="token", target_id=row.token_id,
                details={"name": row.name, "expires_at": expires_at})
    commit()
    return row_dict(row, token=secret)


@blp.route("/<uuid:token_id>", methods=["DELETE"])
@require_member()
@blp.response(204)
def revoke_token(token_id):
    """Revoke one of your tokens; owners may revoke any member token, admins any but an
    owner's."""
    token = tokens.revoke_member_token(db(), principal(), token_id)
    audit_event("token.revoke", target_type="token", target_id=token_id,
                details={"member_id": str(token.member_id)})
    commit()
