"""API tokens for members (and devices, issued at enrolment)."""

from __future__ import annotations

import datetime as dt
import uuid

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from govern.auth import mint_token
from govern.errors import ApiError, NotFound
from govern.models import ApiToken

MAX_TOKEN_DAYS = 3650


def issue_member_token(
    session: Session,
    tenant_id: uuid.UUID,
    member_id: uuid.UUID,
    name: str = "",
    expires_at: dt.datetime | None = None,
) -> tuple[str, ApiToken]:
    """A new token for a member; the returned secret is never stored and cannot be shown again."""
    now = dt.datetime.now(dt.UTC)
    if expires_at is not None:
        if expires_at <= now:
            raise ApiError(422, "expires_at must be in the future.",
                           details={"expires_at": ["must be in the future"]})
        if expires_at > now + dt.timedelta(days=MAX_TOKEN_DAYS):
            raise ApiError(422, f"expires_at may be at most {MAX_TOKEN_DAYS} days ahead.",
                           details={"expires_at": [f"at most {MAX_TOKEN_DAYS} days ahead"]})
    minted = mint_token(tenant_id)
    row = ApiToken(
        tenant_id=tenant_id,
        token_id=uuid.uuid4(),
        kind="member",
        member_id=member_id,
        name=name,
        token_hash=minted.token_hash,
        hint=minted.hint,
        expires_at=expires_at,
    )
    session.add(row)
    session.flush()
    return minted.token, row


def issue_device_token(session: Session, tenant_id: uuid.UUID, device_id: uuid.UUID,
                       name: str = "device") -> tuple[str, ApiToken]:
    minted = mint_token(tenant_id)
    row = ApiToken(tenant_id=tenant_id, token_id=uuid.uuid4(), kind="device",
                   device_id=device_id, name=name, token_hash=minted.token_hash,
                   hint=minted.hint)
    session.add(row)
    session.flush()
    return minted.token, row


def list_member_tokens(session: Session, member_id: uuid.UUID | None) -> list[ApiToken]:
    """Member tokens of one member, or of every member when member_id is None."""
    stmt = select(ApiToken).where(ApiToken.kind == "member").order_by(ApiToken.created_at)
    if member_id is not None:
        stmt = stmt.where(ApiToken.member_id == member_id)
    return list(session.scalars(stmt))


def get_token(session: Session, token_id: uuid.UUID) -> ApiToken:
    token = session.scalar(select(ApiToken).where(ApiToken.token_id == token_id))
    if token is None:
        raise NotFound("token")
    return token


def revoke_token(session: Session, token: ApiToken) -> None:
    if token.revoked_at is None:
        token.revoked_at = dt.datetime.now(dt.UTC)
        session.flush()


def revoke_all_for_member(session: Session, member_id: uuid.UUID) -> int:
    result = session.execute(
        update(ApiToken)
        .where(ApiToken.member_id == member_id, ApiToken.revoked_at.is_(None))
        .values(revoked_at=dt.datetime.now(dt.UTC))
    )
    return result.rowcount or 0
