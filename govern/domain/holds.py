"""Legal holds: a held subject's (or the whole tenant's) data neither ages nor can be
erased until the hold ends."""

from __future__ import annotations

import datetime as dt
import uuid

from sqlalchemy.orm import Session

from govern.domain import audit
from govern.domain.subjects import get_subject
from govern.exceptions import Conflict, Invalid, NotFound
from govern.sql import holds as sql


def _view(row, now: dt.datetime) -> dict:
    d = dict(row._mapping)
    d["active"] = d["starts_at"] <= now and (d["ends_at"] is None or d["ends_at"] > now)
    return d


def is_held(session: Session, subject_id: uuid.UUID, now: dt.datetime) -> bool:
    """True while a hold on the subject or on the whole tenant is in force."""
    return bool(session.execute(sql.IS_HELD, {
        "t": session.info.get("tenant_id"), "s": subject_id, "now": now}).scalar())


def create_hold(session: Session, tenant_id: uuid.UUID, actor: str, *, reason: str,
                subject_id: uuid.UUID | None, starts_at: dt.datetime | None,
                ends_at: dt.datetime | None, now: dt.datetime,
                request_id: str | None = None) -> dict:
    starts_at = starts_at or now
    if ends_at is not None and ends_at <= starts_at:
        raise Invalid("ends_at must be after starts_at.", {"ends_at": ["must be after starts_at"]})
    if subject_id is not None:
        get_subject(session, subject_id)
    hold_id = uuid.uuid4()
    row = session.execute(sql.CREATE_HOLD, {
        "t": tenant_id, "h": hold_id, "s": subject_id, "r": reason, "start": starts_at,
        "end": ends_at, "actor": actor}).one()
    audit.record(session, tenant_id, actor, "legal_hold.create", target_type="legal_hold",
                 target_id=hold_id, subject_id=subject_id, request_id=request_id,
                 details={"reason": reason, "starts_at": starts_at, "ends_at": ends_at})
    return _view(row, now)


def list_holds(session: Session, subject_id: uuid.UUID | None, now: dt.datetime) -> list[dict]:
    rows = session.execute(sql.LIST_HOLDS, {"t": session.info.get("tenant_id"),
                                              "s": subject_id}).all()
    return [_view(r, now) for r in rows]


def get_hold(session: Session, hold_id: uuid.UUID, now: dt.datetime) -> dict:
    row = session.execute(sql.GET_HOLD, {"t": session.info.get("tenant_id"), "h": hold_id}).first()
    if row is None:
        raise NotFound("legal hold")
    return _view(row, now)


def end_hold(session: Session, tenant_id: uuid.UUID, actor: str, hold_id: uuid.UUID,
             ends_at: dt.datetime | None, now: dt.datetime,
             request_id: str | None = None) -> dict:
    """End a hold now (or at `ends_at`); what it paused is applied at the next run."""
    hold = get_hold(session, hold_id, now)
    ends_at = ends_at or now
    if hold["ends_at"] is not None and hold["ends_at"] <= now:
        raise Conflict("This hold has already ended.", "hold_ended")
    if ends_at <= hold["starts_at"]:
        raise Invalid("ends_at must be after starts_at.", {"ends_at": ["must be after starts_at"]})
    session.execute(sql.END_HOLD, {"t": tenant_id, "e": ends_at, "h": hold_id})
    audit.record(session, tenant_id, actor, "legal_hold.end", target_type="legal_hold",
                 target_id=hold_id, subject_id=hold["subject_id"], request_id=request_id,
                 details={"ends_at": ends_at})
    return get_hold(session, hold_id, now)
