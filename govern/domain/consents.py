"""The consent ledger: append-only; the state at any instant is derived, never stored."""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass

import orjson
from sqlalchemy import select
from sqlalchemy.orm import Session

from govern.domain import audit
from govern.domain.purposes import purpose_by_key
from govern.domain.subjects import get_live_subject
from govern.exceptions import Invalid, TooLarge
from govern.models import ConsentEvent, Purpose
from govern.sql import consent as consent_sql

CLOCK_SKEW = dt.timedelta(minutes=1)
# How far back a consent may be dated: an app may post a grant it recorded offline, an admin
# may enter a signed paper form. Longer backdating would let a late grant launder old pings.
MAX_BACKDATE = {"device": dt.timedelta(hours=24), "admin": dt.timedelta(days=366)}


# The ledger is append-only and nothing can delete from it: what one post may add is bounded.
EVIDENCE_MAX_BYTES = 4096  # compact UTF-8 JSON
EVIDENCE_MAX_DEPTH = 4  # the object itself is level 1
EVIDENCE_MAX_KEYS = 100  # at all levels together, list items included
EVIDENCE_MAX_KEY_CHARS = 64
EVIDENCE_MAX_VALUE_CHARS = 1000


def check_evidence(evidence: dict) -> None:
    """Refuse evidence over the ledger's bounds: 413 naming the byte limit, else 422 naming
    the depth, key-count, key-length or value-length limit (and where)."""
    size = len(orjson.dumps(evidence, default=str))
    if size > EVIDENCE_MAX_BYTES:
        raise TooLarge(f"evidence may be at most {EVIDENCE_MAX_BYTES} bytes as JSON "
                       f"(this is {size}).", code="evidence_too_large",
                       details={"evidence": [f"at most {EVIDENCE_MAX_BYTES} bytes"]})
    stack, items = [("evidence", evidence, 1)], 0

    def refuse(message: str):
        raise Invalid(f"evidence: {message}", {"evidence": [message]})

    while stack:
        where, value, depth = stack.pop()
        if isinstance(value, dict | list):
            if depth > EVIDENCE_MAX_DEPTH:
                refuse(f"nested deeper than {EVIDENCE_MAX_DEPTH} levels at {where}")
            items += len(value)
            if items > EVIDENCE_MAX_KEYS:
                refuse(f"more than {EVIDENCE_MAX_KEYS} keys and items in all")
            pairs = value.items() if isinstance(value, dict) else enumerate(value)
            for key, item in pairs:
                if isinstance(key, str) and len(key) > EVIDENCE_MAX_KEY_CHARS:
                    refuse(f"key longer than {EVIDENCE_MAX_KEY_CHARS} characters at {where}")
                stack.append((f"{where}.{key}", item, depth + 1))
        elif isinstance(value, str) and len(value) > EVIDENCE_MAX_VALUE_CHARS:
            refuse(f"value longer than {EVIDENCE_MAX_VALUE_CHARS} characters at {where}")


def check_consent_time(at: dt.datetime, source: str, now: dt.datetime) -> None:
    if at > now + CLOCK_SKEW:
        raise Invalid("'at' may not be in the future.", {"at": ["may not be in the future"]})
    if at < now - MAX_BACKDATE[source]:
        limit = MAX_BACKDATE[source]
        raise Invalid(f"'at' may be at most {limit} in the past for {source} consents.",
                      {"at": [f"at most {limit} in the past"]})


def record_consent(session: Session, tenant_id: uuid.UUID, subject_id: uuid.UUID, *,
                   purpose_key: str, status: str, at: dt.datetime | None, policy_version: str,
                   evidence: dict, source: str, actor: str,
                   request_id: str | None = None,
                   now: dt.datetime | None = None) -> ConsentEvent:
    """`now`: the instant the event is recorded (the request's); `at` may lie before it
    within MAX_BACKDATE for its source, never after it."""
    now = now or dt.datetime.now(dt.UTC)
    at = at or now
    check_consent_time(at, source, now)
    check_evidence(evidence)
    get_live_subject(session, subject_id)
    purpose = purpose_by_key(session, purpose_key)
    if purpose is None:
        raise Invalid(f"Unknown purpose '{purpose_key}'.", {"purpose": ["unknown purpose"]})
    event = ConsentEvent(tenant_id=tenant_id, event_id=uuid.uuid4(), subject_id=subject_id,
                         purpose_id=purpose.purpose_id, status=status, at=at,
                         policy_version=policy_version, source=source, actor_id=actor,
                         evidence=evidence)
    session.add(event)
    session.flush()
    audit.record(session, tenant_id, actor, f"consent.{status}", target_type="consent",
                 target_id=event.event_id, subject_id=subject_id, request_id=request_id,
                 details={"purpose": purpose_key, "at": at.isoformat(), "source": source,
                          "policy_version": policy_version})
    return event


def consent_history(session: Session, subject_id: uuid.UUID) -> list[tuple[ConsentEvent, str]]:
    rows = session.execute(
        select(ConsentEvent, Purpose.key)
        .join(Purpose, (Purpose.tenant_id == ConsentEvent.tenant_id)
              & (Purpose.purpose_id == ConsentEvent.purpose_id))
        .where(ConsentEvent.subject_id == subject_id)
        .order_by(ConsentEvent.at, ConsentEvent.seq)
    ).all()
    return [(event, key) for event, key in rows]


@dataclass(frozen=True)
class PurposeState:
    purpose: Purpose
    status: str  # granted, withdrawn, or none (no event yet)
    since: dt.datetime | None

    @property
    def active(self) -> bool:
        """May this purpose use the subject's location at that instant?"""
        return not self.purpose.requires_consent or self.status == "granted"


def consent_state(session: Session, subject_id: uuid.UUID,
                  at: dt.datetime | None = None) -> list[PurposeState]:
    """Each live purpose's consent state for the subject at `at` (default now)."""
    at = at or dt.datetime.now(dt.UTC)
    latest = {r.purpose_id: r for r in session.execute(consent_sql.STATE_AT,
                                                       {"subject_id": subject_id, "at": at})}
    states = []
    for purpose in session.scalars(select(Purpose).where(Purpose.archived_at.is_(None))
                                   .order_by(Purpose.key)):
        row = latest.get(purpose.purpose_id)
        states.append(PurposeState(purpose, row.status if row else "none",
                                   row.at if row else None))
    return states
