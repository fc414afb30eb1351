"""GET /v1/me: who the token belongs to (for the console and scripts)."""

from __future__ import annotations

from flask_smorest import Blueprint
from marshmallow import Schema, fields

from govern.api.auth import principal, require_member
from govern.api.common import db
from govern.domain import members

blp = Blueprint("me", __name__, url_prefix="/v1/me", description="The calling member.")


class MeSchema(Schema):
    tenant_id = fields.UUID()
    tenant_name = fields.String()
    member_id = fields.UUID()
    role = fields.String()
    email = fields.String()
    display_name = fields.String(allow_none=True)


@blp.route("")
@require_member()
@blp.response(200, MeSchema)
def me():
    """The tenant, member and role behind this token."""
    p = principal()
    return {"tenant_id": p.tenant_id, "member_id": p.member_id, "role": p.role,
            **members.whoami(db(), p.member_id)}
