"""API tokens for members (and devices, issued at enrolment)."""

from __future__ import annotations

import datetime as dt
import uuid

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from govern.auth import Principal, mint_token
from govern.domain import audit
from govern.exceptions import Forbidden, Invalid, NotFound
from govern.models import ROLES, ApiToken, Member
from govern.policy.roles import may_manage

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
            raise Invalid("expires_at must be in the future.",
                          details={"expires_at": ["must be in the future"]})
        if expires_at > now + dt.timedelta(days=MAX_TOKEN_DAYS):
            raise Invalid(f"expires_at may be at most {MAX_TOKEN_DAYS} days ahead.",
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


def revoke_member_token(session: Session, actor: Principal, token_id: uuid.UUID) -> ApiToken:
    """Revoke a member token: one's own, or one of a member the actor may manage (so an
    owner's tokens only by an owner: an admin cannot lock the owners out)."""
    token = get_token(session, token_id)
    if token.kind != "member":
        raise NotFound("token")
    if token.member_id != actor.member_id:
        if actor.role not in ("owner", "admin"):
            raise NotFound("token")
        holder = session.scalar(select(Member).where(Member.member_id == token.member_id))
        if holder is not None and holder.removed_at is None \
                and not may_manage(actor.role, holder.role):
            raise Forbidden(f"Only owners may revoke a token of an {holder.role}.",
                            code="forbidden", details={"member_role": holder.role})
    revoke_token(session, token)
    return token


def recover_member_token(session: Session, tenant_id: uuid.UUID, *, member: str | None = None,
                         role: str | None = None, name: str = "operator recovery",
                         actor: str = "cli") -> tuple[str, ApiToken, Member]:
    """An operator's new token for a member, e.g. an owner whose tokens were all revoked.

    `member` is an email (any case) or a member id; `role` picks the longest-standing
    active member with that role, adding one when the tenant has none. The secret is
    returned once and audited as `token.create` by the operator."""
    if (member is None) == (role is None):
        raise ValueError("give a member or a role, not both")
    if member is not None:
        stmt = select(Member).where(Member.removed_at.is_(None))
        try:
            stmt = stmt.where(Member.member_id == uuid.UUID(member))
        except ValueError:
            stmt = stmt.where(func.lower(Member.email) == member.strip().lower())
        holder = session.scalar(stmt)
        if holder is None:
            raise NotFound("member")
    else:
        if role not in ROLES:
            raise ValueError(f"role must be one of {', '.join(ROLES)}")
        holder = session.scalar(select(Member).where(Member.role == role,
                                                     Member.removed_at.is_(None))
                                .order_by(Member.created_at, Member.member_id).limit(1))
        if holder is None:
            holder = Member(tenant_id=tenant_id, member_id=uuid.uuid4(),
                            email=f"{role}@operator.invalid",
                            display_name=f"{role.title()} (added by operator)", role=role)
            session.add(holder)
            session.flush()
            audit.record(session, tenant_id, actor, "member.invite", target_type="member",
                         target_id=holder.member_id, details={"role": role})
    secret, row = issue_member_token(session, tenant_id, holder.member_id, name)
    audit.record(session, tenant_id, actor, "token.create", target_type="token",
                 target_id=row.token_id,
                 details={"member_id": str(holder.member_id), "role": holder.role,
                          "via": "operator"})
    return secret, row, holder


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
