"""Team members and their roles. The tenant always keeps at least one owner."""

from __future__ import annotations

import datetime as dt
import uuid

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from govern.auth import Principal
from govern.domain import audit
from govern.domain.tokens import issue_member_token, revoke_all_for_member
from govern.exceptions import Conflict, Forbidden, NotFound
from govern.models import Member
from govern.policy.roles import may_manage
from govern.sql import members as sql


def _forbid_unless_may_manage(actor: Principal, role: str) -> None:
    if not may_manage(actor.role, role):
        raise Forbidden(f"The role '{actor.role}' may not manage '{role}' members.")


def list_members(session: Session) -> list[Member]:
    return list(
        session.scalars(
            select(Member).where(Member.removed_at.is_(None)).order_by(Member.created_at)
        )
    )


def get_member(session: Session, member_id: uuid.UUID) -> Member:
    member = session.scalar(
        select(Member).where(Member.member_id == member_id, Member.removed_at.is_(None))
    )
    if member is None:
        raise NotFound("member")
    return member


def invite_member(session: Session, actor: Principal, email: str, role: str,
                  display_name: str | None = None) -> tuple[Member, str]:
    """Add a member and return their first token (shown once)."""
    _forbid_unless_may_manage(actor, role)
    member = Member(tenant_id=actor.tenant_id, member_id=uuid.uuid4(), email=email.strip(),
                    display_name=display_name, role=role)
    try:
        with session.begin_nested():
            session.add(member)
            session.flush()
    except IntegrityError as exc:
        raise Conflict("A member with this email already exists.", "member_exists") from exc
    token, _ = issue_member_token(session, actor.tenant_id, member.member_id, name="invitation")
    audit.record(session, actor.tenant_id, actor.actor_id, "member.invite",
                 target_type="member", target_id=member.member_id,
                 details={"email": member.email, "role": role})
    return member, token


def _lock_owners(session: Session, tenant_id: uuid.UUID) -> int:
    """Lock the active owners so two concurrent demotions cannot leave none (naming the
    tenant: Citus runs FOR UPDATE only on a statement routed to one shard)."""
    owners = session.scalars(
        select(Member.member_id)
        .where(Member.tenant_id == tenant_id, Member.role == "owner",
               Member.removed_at.is_(None))
        .with_for_update()
    ).all()
    return len(owners)


def change_role(session: Session, actor: Principal, member_id: uuid.UUID, role: str) -> Member:
    member = get_member(session, member_id)
    _forbid_unless_may_manage(actor, member.role)
    _forbid_unless_may_manage(actor, role)
    if member.role == role:
        return member
    if member.role == "owner" and _lock_owners(session, member.tenant_id) <= 1:
        raise Conflict("The last owner cannot be demoted; make another owner first.",
                       "last_owner")
    previous = member.role
    member.role = role
    session.flush()
    audit.record(session, actor.tenant_id, actor.actor_id, "member.role_change",
                 target_type="member", target_id=member_id,
                 details={"from": previous, "to": role})
    return member


def remove_member(session: Session, actor: Principal, member_id: uuid.UUID) -> None:
    member = get_member(session, member_id)
    _forbid_unless_may_manage(actor, member.role)
    if member.role == "owner" and _lock_owners(session, member.tenant_id) <= 1:
        raise Conflict("The last owner cannot be removed.", "last_owner")
    member.removed_at = dt.datetime.now(dt.UTC)
    revoked = revoke_all_for_member(session, member_id)
    session.flush()
    audit.record(session, actor.tenant_id, actor.actor_id, "member.remove",
                 target_type="member", target_id=member_id,
                 details={"email": member.email, "role": member.role, "tokens_revoked": revoked})




def whoami(session: Session, member_id) -> dict:
    """The member's tenant name, email and display name."""
    return dict(session.execute(sql.WHOAMI, {"m": member_id}).one()._mapping)
