"""Purposes: why location is processed, how precisely, how long, and who may read under it."""

from __future__ import annotations

import datetime as dt
import uuid

from sqlalchemy import exists, func, select
from sqlalchemy.orm import Session

from govern.domain import audit
from govern.exceptions import Conflict, NotFound
from govern.models import ConsentEvent, Purpose
from govern.policy.cutoffs import floor_after_retention_change
from govern.sql import purposes as sql

MAX_PURPOSES = 63  # a ping's purposes are a 63-bit mask
EDITABLE = ("title", "description", "requires_consent", "precision_m", "retention_days",
            "individual_access", "aggregate_use", "reader_roles")


def list_purposes(session: Session, include_archived: bool = False) -> list[Purpose]:
    stmt = select(Purpose).order_by(Purpose.key)
    if not include_archived:
        stmt = stmt.where(Purpose.archived_at.is_(None))
    return list(session.scalars(stmt))


def get_purpose(session: Session, purpose_id: uuid.UUID) -> Purpose:
    purpose = session.scalar(select(Purpose).where(Purpose.purpose_id == purpose_id))
    if purpose is None:
        raise NotFound("purpose")
    return purpose


def purpose_by_key(session: Session, key: str, *, active_only: bool = True) -> Purpose | None:
    stmt = select(Purpose).where(Purpose.key == key)
    if active_only:
        stmt = stmt.where(Purpose.archived_at.is_(None))
    return session.scalar(stmt)


def _free_bit(session: Session) -> int:
    used = set(session.scalars(select(Purpose.bit)))
    for bit in range(MAX_PURPOSES):
        if bit not in used:
            return bit
    raise Conflict(f"A tenant can have at most {MAX_PURPOSES} purposes, archived ones included.",
                   "too_many_purposes")


def create_purpose(session: Session, tenant_id: uuid.UUID, actor: str, values: dict,
                   request_id: str | None = None) -> Purpose:
    session.execute(sql.LOCK_PURPOSES,
                    {"k": f"govern.purposes:{tenant_id}"})
    if session.scalar(select(exists().where(Purpose.key == values["key"]))):
        raise Conflict(f"A purpose with key '{values['key']}' already exists.", "purpose_exists")
    purpose = Purpose(tenant_id=tenant_id, purpose_id=uuid.uuid4(), bit=_free_bit(session),
                      **values)
    session.add(purpose)
    session.flush()
    # stored pings of a new purpose are at its precision: retention starts from here
    session.execute(sql.START_RETENTION_STATE,
                    {"t": tenant_id, "p": purpose.purpose_id, "pr": purpose.precision_m})
    audit.record(session, tenant_id, actor, "purpose.create", target_type="purpose",
                 target_id=purpose.purpose_id, request_id=request_id,
                 details={k: values.get(k) for k in ("key", *EDITABLE)})
    return purpose


def update_purpose(session: Session, actor: str, purpose_id: uuid.UUID, changes: dict,
                   request_id: str | None = None) -> Purpose:
    """Change a purpose. Precision and retention changes apply to stored pings too: pings keep
    their purposes as bits, and reads and ageing always use the purpose's current settings."""
    purpose = get_purpose(session, purpose_id)
    if purpose.archived_at is not None:
        raise Conflict("An archived purpose cannot be changed.", "purpose_archived")
    diff = {}
    for key in EDITABLE:
        if key in changes and getattr(purpose, key) != changes[key]:
            diff[key] = {"from": getattr(purpose, key), "to": changes[key]}
            setattr(purpose, key, changes[key])
    if diff:
        now = dt.datetime.now(dt.UTC)
        # cut-offs never move back (govern.policy.cutoffs): what a shorter window closed
        # stays closed; individual reads after a widening see only data collected after it
        if "retention_days" in diff:
            purpose.window_floor = floor_after_retention_change(
                diff["retention_days"]["from"], purpose.window_floor, now)
        if "individual_access" in diff and purpose.individual_access:
            purpose.individual_since = now
        purpose.updated_at = now
        session.flush()
        audit.record(session, purpose.tenant_id, actor, "purpose.update", target_type="purpose",
                     target_id=purpose_id, request_id=request_id,
                     details={"key": purpose.key, "changed": diff})
    return purpose


def purpose_in_use(session: Session, purpose: Purpose) -> bool:
    """Used once any consent names it or any stored ping serves it: then it is archived."""
    if session.scalar(select(exists().where(ConsentEvent.purpose_id == purpose.purpose_id))):
        return True
    return bool(session.scalar(
        sql.PINGS_SERVE_BIT,
        {"tenant_id": purpose.tenant_id, "bit": purpose.bit},
    )) if _has_pings_table(session) else False


def _has_pings_table(session: Session) -> bool:
    return bool(session.scalar(sql.HAS_PINGS_TABLE))


def remove_purpose(session: Session, actor: str, purpose_id: uuid.UUID,
                   request_id: str | None = None) -> str:
    """Delete an unused purpose; archive one in use (its data keeps ageing). Returns which."""
    purpose = get_purpose(session, purpose_id)
    if purpose.archived_at is not None:
        return "archived"
    if purpose_in_use(session, purpose):
        purpose.archived_at = func.now()
        outcome = "archived"
    else:
        session.delete(purpose)
        outcome = "deleted"
    session.flush()
    audit.record(session, purpose.tenant_id, actor, f"purpose.{outcome[:-1]}",
                 target_type="purpose", target_id=purpose_id, request_id=request_id,
                 details={"key": purpose.key})
    return outcome
