"""Individual-level reads: always under a purpose, only to the roles it names, only what
serves it now, never finer than it allows, and always audited."""

from __future__ import annotations

import base64
import datetime as dt
import uuid
from dataclasses import dataclass

from sqlalchemy.orm import Session

from govern.auth import Principal
from govern.domain import audit
from govern.domain.policy import current_policy
from govern.domain.purposes import purpose_by_key
from govern.exceptions import Forbidden, Invalid
from govern.models import Purpose
from govern.policy import cutoffs
from govern.sql import reads as sql

MAX_RANGE = dt.timedelta(days=31)
CURSOR_START = (dt.datetime.min.replace(tzinfo=dt.UTC), uuid.UUID(int=0), "")


def may_read_individuals(purpose: Purpose, role: str | None) -> bool:
    """Individual data only under a purpose that allows it, and only for roles it names."""
    return purpose.individual_access and role in (purpose.reader_roles or [])


def window_start(purpose: Purpose, now: dt.datetime) -> dt.datetime:
    """Nothing recorded at or before this instant may serve the purpose any more (its window
    and every earlier, shorter window: govern.policy.cutoffs)."""
    return cutoffs.window_start(purpose.retention_days, purpose.window_floor, now)


def individual_start(purpose: Purpose, now: dt.datetime) -> dt.datetime:
    """Individual reads: also nothing from before the purpose last became individually
    readable (a widening applies only to data collected after it)."""
    return cutoffs.latest(window_start(purpose, now), purpose.individual_since)


def readable_cutoffs(session: Session, purpose: Purpose, now: dt.datetime,
                     subject_id: uuid.UUID | None = None) -> dict[uuid.UUID, dt.datetime]:
    """Subjects (or the one asked for) whose data may be read individually under the purpose
    now (consent active now, or none needed), each with the instant at or before which
    nothing of theirs serves it: the purpose's individual cut-off, or the subject's latest
    withdrawal when later (data collected before a withdrawal stays out, even once consent
    is granted again). Re-checked on every read, whatever retention has done."""
    start = individual_start(purpose, now)
    return {r.subject_id: cutoffs.latest(start, r.withdrawn_until)
            for r in session.execute(sql.READABLE_SUBJECTS, {
                "tenant_id": purpose.tenant_id, "requires_consent": purpose.requires_consent,
                "purpose_id": purpose.purpose_id, "now": now, "subject_id": subject_id})}


def readable_subjects(session: Session, purpose: Purpose, now: dt.datetime,
                      subject_id: uuid.UUID | None = None) -> list[uuid.UUID]:
    """The subjects of readable_cutoffs."""
    return list(readable_cutoffs(session, purpose, now, subject_id))


def readable_purpose(session: Session, principal: Principal, key: str) -> Purpose:
    purpose = purpose_by_key(session, key)
    if purpose is None:
        raise Invalid(f"Unknown purpose '{key}'.", {"purpose": ["unknown purpose"]})
    if not purpose.individual_access:
        raise Forbidden(f"Purpose '{key}' allows aggregate use only.", code="aggregate_only")
    if not may_read_individuals(purpose, principal.role):
        raise Forbidden(f"The role '{principal.role}' may not read under '{key}'.",
                        details={"reader_roles": purpose.reader_roles})
    return purpose


def encode_cursor(t: dt.datetime, device_id: uuid.UUID, key: str) -> str:
    raw = f"{t.isoformat()}|{device_id}|{key}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str | None) -> tuple:
    if not cursor:
        return CURSOR_START
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        t, device, key = raw.split("|", 2)
        return dt.datetime.fromisoformat(t), uuid.UUID(device), key
    except (ValueError, UnicodeDecodeError) as exc:
        raise Invalid("The cursor is not one this API gave out.", {"cursor": ["invalid"]}) \
            from exc


def check_range(t_from: dt.datetime, t_to: dt.datetime) -> None:
    if t_to <= t_from:
        raise Invalid("'to' must be after 'from'.", {"to": ["must be after from"]})
    if t_to - t_from > MAX_RANGE:
        raise Invalid(f"A time range may span at most {MAX_RANGE.days} days.",
                      {"to": [f"at most {MAX_RANGE.days} days after from"]})


@dataclass
class Track:
    points: list
    next_cursor: str | None
    precision_m: int


def read_track(session: Session, principal: Principal, subject_id: uuid.UUID, purpose_key: str,
               t_from: dt.datetime, t_to: dt.datetime, *, limit: int, cursor: str | None,
               request_id: str | None = None, fmt: str = "geojson",
               now: dt.datetime) -> Track:
    from govern.domain.subjects import get_subject

    check_range(t_from, t_to)
    purpose = readable_purpose(session, principal, purpose_key)
    get_subject(session, subject_id)
    c_t, c_device, c_key = decode_cursor(cursor)
    cutoff = readable_cutoffs(session, purpose, now, subject_id).get(subject_id)
    readable = cutoff is not None
    rows = []
    if readable:
        rows = session.execute(sql.TRACK, {
            "tenant_id": purpose.tenant_id, "subject_id": subject_id, "bit": 1 << purpose.bit,
            "precision": purpose.precision_m,
            "window_start": cutoff, "t_from": t_from, "t_to": t_to,
            "c_t": c_t, "c_device": c_device, "c_key": c_key, "limit": limit + 1}).all()
    next_cursor = None
    if len(rows) > limit:
        rows = rows[:limit]
        last = rows[-1]
        next_cursor = encode_cursor(last.at, last.device_id, last.client_key)
    audit.record(session, principal.tenant_id, principal.actor_id, "read.track",
                 target_type="subject", target_id=subject_id, subject_id=subject_id,
                 request_id=request_id,
                 details={"purpose": purpose_key, "from": t_from, "to": t_to,
                          "returned": len(rows), "format": fmt,
                          "consent_active": readable})
    return Track(rows, next_cursor, purpose.precision_m)


def latest_positions(session: Session, principal: Principal, purpose_key: str,
                     request_id: str | None = None, *, now: dt.datetime) -> list:
    purpose = readable_purpose(session, principal, purpose_key)
    readable = readable_cutoffs(session, purpose, now)
    rows = session.execute(sql.LATEST, {
        "tenant_id": purpose.tenant_id, "subject_ids": list(readable),
        "starts": list(readable.values()),
        "bit": 1 << purpose.bit, "precision": purpose.precision_m}).all() if readable else []
    # one entry per subject read, so each subject's reads are found by subject_id (audit
    # queries, the access bundle); a read that returned nobody is still recorded
    details = {"purpose": purpose_key, "returned": len(rows)}
    read = sorted({r.subject_id for r in rows})
    if not read:
        audit.record(session, principal.tenant_id, principal.actor_id, "read.positions",
                     target_type="purpose", target_id=purpose_key, request_id=request_id,
                     details=details)
    for subject_id in read:
        audit.record(session, principal.tenant_id, principal.actor_id, "read.positions",
                     target_type="subject", target_id=subject_id, subject_id=subject_id,
                     request_id=request_id, details=details)
    return rows


def subject_travel(session: Session, principal: Principal, subject_id: uuid.UUID,
                   purpose_key: str, t_from: dt.datetime, t_to: dt.datetime,
                   request_id: str | None = None, *, now: dt.datetime) -> dict:
    """A subject's trips per local day (distance, moving time, ends at the purpose's
    precision), under a purpose that allows individual reads to the caller's role, for a
    subject whose consent is active now; audited like a track read."""
    from govern.domain.subjects import get_subject

    check_range(t_from, t_to)
    purpose = readable_purpose(session, principal, purpose_key)
    subject = get_subject(session, subject_id)
    tz = subject.timezone or current_policy(session)["timezone"]
    cutoff = readable_cutoffs(session, purpose, now, subject_id).get(subject_id)
    readable = cutoff is not None
    rows = []
    if readable:
        rows = session.execute(sql.SUBJECT_TRIPS, {
            "tenant_id": purpose.tenant_id, "subject_id": subject_id, "bit": 1 << purpose.bit,
            "tz": tz,
            "precision": purpose.precision_m, "window_start": cutoff,
            "t_from": t_from, "t_to": t_to}).all()
    days: dict[dt.date, dict] = {}
    for r in rows:
        day = days.setdefault(r.day, {"date": r.day.isoformat(), "count": 0,
                                      "distance_m": 0.0, "moving_s": 0, "trips": []})
        day["count"] += 1
        day["distance_m"] += r.distance_m
        day["moving_s"] += r.moving_s
        day["trips"].append({
            "started_at": r.started_at, "ended_at": r.ended_at, "duration_s": r.duration_s,
            "moving_s": r.moving_s, "distance_m": round(r.distance_m),
            "origin": {"lon": r.origin_lon, "lat": r.origin_lat, "site": r.origin_site},
            "destination": {"lon": r.dest_lon, "lat": r.dest_lat, "site": r.dest_site},
            "precision_m": r.precision_m})
    for day in days.values():
        day["distance_m"] = round(day["distance_m"])
    audit.record(session, principal.tenant_id, principal.actor_id, "read.travel",
                 target_type="subject", target_id=subject_id, subject_id=subject_id,
                 request_id=request_id,
                 details={"purpose": purpose_key, "from": t_from, "to": t_to,
                          "returned": len(rows), "consent_active": readable})
    return {"subject_id": subject_id, "purpose": purpose_key, "timezone": tz,
            "precision_m": purpose.precision_m, "from": t_from, "to": t_to,
            "days": list(days.values()),
            "totals": {"trips": len(rows),
                       "distance_m": round(sum(r.distance_m for r in rows)),
                       "moving_s": sum(r.moving_s for r in rows)}}
