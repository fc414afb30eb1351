"""Subjects (tracked people) and their devices."""

from __future__ import annotations

import datetime as dt
import logging
import re
import secrets
import uuid

from sqlalchemy import event, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from govern.db import scope_to_tenant
from govern.domain import audit
from govern.domain.tokens import issue_device_token
from govern.exceptions import Conflict, Invalid, NotFound
from govern.models import ApiToken, Device, Subject
from govern.sql import subjects as sql

log = logging.getLogger("govern.subjects")

IDENTIFIER_RE = re.compile(r"^[A-Za-z0-9._:-]{4,100}$")
SUBJECT_FIELDS = ("display_name", "timezone", "collection_windows", "collection_blocked",
                  "blocked_reason")


def get_subject(session: Session, subject_id: uuid.UUID) -> Subject:
    subject = session.scalar(select(Subject).where(Subject.subject_id == subject_id))
    if subject is None:
        raise NotFound("subject")
    return subject


def get_live_subject(session: Session, subject_id: uuid.UUID) -> Subject:
    """A subject that may still be changed: an erased subject stays erased (no unblocking,
    no new device, no consent), so its erasure cannot be undone by collecting again."""
    subject = get_subject(session, subject_id)
    if subject.erased_at is not None:
        raise Conflict("This subject was erased; it cannot be changed, given a device or "
                       "consent again. Add a new subject if the person returns.",
                       "subject_erased", {"erased_at": subject.erased_at.isoformat()})
    return subject


def list_subjects(session: Session, limit: int, after: uuid.UUID | None = None,
                  external_ref: str | None = None) -> list[Subject]:
    stmt = select(Subject).order_by(Subject.subject_id).limit(limit)
    if after is not None:
        stmt = stmt.where(Subject.subject_id > after)
    if external_ref is not None:
        stmt = stmt.where(Subject.external_ref == external_ref)
    return list(session.scalars(stmt))


def _check_block(values: dict, subject: Subject | None = None) -> None:
    blocked = values.get("collection_blocked", subject.collection_blocked if subject else False)
    reason = values.get("blocked_reason", subject.blocked_reason if subject else None)
    if blocked and not (reason or "").strip():
        raise Invalid("A blocked subject needs a blocked_reason (for example: a minor).",
                      {"blocked_reason": ["required when collection_blocked is true"]})


def create_subject(session: Session, tenant_id: uuid.UUID, actor: str, values: dict,
                   request_id: str | None = None) -> Subject:
    _check_block(values)
    subject = Subject(tenant_id=tenant_id, subject_id=uuid.uuid4(), **values)
    try:
        with session.begin_nested():
            session.add(subject)
            session.flush()
    except IntegrityError as exc:
        raise Conflict("A subject with this external_ref already exists.",
                       "subject_exists") from exc
    audit.record(session, tenant_id, actor, "subject.create", target_type="subject",
                 target_id=subject.subject_id, subject_id=subject.subject_id,
                 request_id=request_id,
                 details={"fields": sorted(k for k, v in values.items() if v is not None)})
    return subject


def update_subject(session: Session, actor: str, subject_id: uuid.UUID, changes: dict,
                   request_id: str | None = None) -> Subject:
    subject = get_live_subject(session, subject_id)
    _check_block(changes, subject)
    changed = []
    for key in SUBJECT_FIELDS:
        if key in changes and getattr(subject, key) != changes[key]:
            changed.append(key)
            setattr(subject, key, changes[key])
    if changes.get("collection_blocked") is False:
        subject.blocked_reason = None
    if changed:
        # names only: the values are personal data, and the audit log outlives an erasure
        session.flush()
        audit.record(session, subject.tenant_id, actor, "subject.update", target_type="subject",
                     target_id=subject_id, subject_id=subject_id, request_id=request_id,
                     details={"changed": changed})
    return subject


def set_duty(session: Session, subject: Subject, on_duty: bool, actor: str,
             request_id: str | None = None) -> Subject:
    if subject.on_duty != on_duty:
        now = dt.datetime.now(dt.UTC)
        subject.on_duty = on_duty
        subject.duty_changed_at = now
        session.flush()
        # the history ingest judges late pings by: off duty then means dropped, even if the
        # app uploads them after going back on duty
        session.execute(sql.RECORD_DUTY,
                        {"t": subject.tenant_id, "s": subject.subject_id, "at": now,
                         "on": on_duty})
        audit.record(session, subject.tenant_id, actor, "subject.duty", target_type="subject",
                     target_id=subject.subject_id, subject_id=subject.subject_id,
                     request_id=request_id, details={"on_duty": on_duty})
    return subject


# ---- devices ---------------------------------------------------------------------------------

def get_device(session: Session, device_id: uuid.UUID) -> Device:
    device = session.scalar(select(Device).where(Device.device_id == device_id))
    if device is None:
        raise NotFound("device")
    return device


def list_devices(session: Session, subject_id: uuid.UUID | None = None,
                 include_revoked: bool = False) -> list[Device]:
    stmt = select(Device).order_by(Device.created_at)
    if subject_id is not None:
        stmt = stmt.where(Device.subject_id == subject_id)
    if not include_revoked:
        stmt = stmt.where(Device.revoked_at.is_(None))
    return list(session.scalars(stmt))


def generate_identifier() -> str:
    """Short enough to type into Traccar Client, random enough not to be guessed."""
    return secrets.token_hex(8)


def enrol_device(session: Session, tenant_id: uuid.UUID, actor: str, subject_id: uuid.UUID,
                 identifier: str | None = None, name: str | None = None,
                 platform: str | None = None,
                 request_id: str | None = None) -> tuple[Device, str]:
    get_live_subject(session, subject_id)
    generated = identifier is None
    identifier = identifier or generate_identifier()
    if not IDENTIFIER_RE.match(identifier):
        raise Invalid("identifier must be 4 to 100 letters, digits, '.', '_', ':' or '-'.",
                      {"identifier": ["invalid format"]})
    device = Device(tenant_id=tenant_id, device_id=uuid.uuid4(), subject_id=subject_id,
                    identifier=identifier, name=name, platform=platform)
    try:
        with session.begin_nested():
            session.add(device)
            session.flush()
    except IntegrityError as exc:
        raise Conflict("This device identifier is already enrolled.",
                       "identifier_taken") from exc
    if generated:
        # claimed once this transaction commits, in a transaction of its own: the claim
        # (SECURITY DEFINER, as the owner) reads the new device, and on Citus the owner may
        # not read shard placements the app role wrote in the same transaction
        session.info.setdefault(_PENDING_CLAIMS, []).append(
            (device.tenant_id, device.device_id, device.identifier))
    token, _ = issue_device_token(session, tenant_id, device.device_id)
    audit.record(session, tenant_id, actor, "device.enrol", target_type="device",
                 target_id=device.device_id, subject_id=subject_id, request_id=request_id,
                 details={"identifier": identifier})
    return device, token


def claim_legacy_route(session: Session, device: Device) -> bool:
    """Let a generated identifier also route through the tenant-less OsmAnd URL, unless any
    device of any tenant ever routed by it. Chosen identifiers never get a global route:
    they would let one tenant probe, or catch the pings of, another's devices."""
    return bool(session.scalar(sql.CLAIM_DEVICE_ROUTE,
                               {"i": device.identifier, "d": device.device_id}))


def retire_routes(session: Session, device_ids: list[uuid.UUID]) -> int:
    """Retire the global routes of devices being revoked or deleted (in the caller's
    tenant): never freed, so no later device can catch their pings."""
    return session.scalar(sql.RETIRE_DEVICE_ROUTES, {"d": list(device_ids)}) or 0


_PENDING_CLAIMS = "govern.pending_route_claims"


@event.listens_for(Session, "after_commit")
def _claim_pending_routes(session: Session) -> None:
    # SQLAlchemy dispatches after_commit for a savepoint's release too (begin_nested): the
    # devices are not committed yet then, and a claim would find none of them
    if session.in_nested_transaction():
        return
    pending = session.info.pop(_PENDING_CLAIMS, None)
    if not pending:
        return
    with Session(bind=session.get_bind()) as claims:
        for tenant_id, device_id, identifier in pending:
            claims.info["tenant_id"] = tenant_id
            try:
                claimed = bool(claims.scalar(sql.CLAIM_DEVICE_ROUTE,
                                             {"i": identifier, "d": device_id}))
                claims.commit()
            except Exception:  # the device is enrolled; only its tenant-less URL is missing
                claims.rollback()
                log.exception("device route not claimed", extra={"fields": {
                    "device_id": str(device_id)}})
                continue
            if not claimed:
                log.warning("device route not claimed: identifier routed before",
                            extra={"fields": {"device_id": str(device_id)}})


@event.listens_for(Session, "after_rollback")
def _drop_pending_routes(session: Session) -> None:
    session.info.pop(_PENDING_CLAIMS, None)


def osmand_device(session: Session, identifier: str,
                  tenant_id: uuid.UUID | None = None) -> Device | None:
    """The live device an OsmAnd post names: by identifier in the tenant its URL names, or
    (the tenant-less URL) through the identifier's global route, where it has one. A revoked
    identifier routes nowhere: it cannot be enrolled again in its tenant, and its global
    route is retired, not freed."""
    if tenant_id is None:
        route = session.execute(sql.DEVICE_ROUTE,
                                {"i": identifier}).first()
        if route is None:
            return None
        tenant_id, match = route.tenant_id, Device.device_id == route.device_id
    else:
        match = Device.identifier == identifier
    scope_to_tenant(session, tenant_id)
    return session.scalar(select(Device).where(match, Device.revoked_at.is_(None)))


def revoke_device(session: Session, actor: str, device_id: uuid.UUID,
                  request_id: str | None = None) -> Device:
    device = get_device(session, device_id)
    if device.revoked_at is None:
        now = dt.datetime.now(dt.UTC)
        device.revoked_at = now
        session.execute(update(ApiToken)
                        .where(ApiToken.device_id == device_id, ApiToken.revoked_at.is_(None))
                        .values(revoked_at=now))
        session.flush()
        retire_routes(session, [device_id])
        audit.record(session, device.tenant_id, actor, "device.revoke", target_type="device",
                     target_id=device_id, subject_id=device.subject_id, request_id=request_id,
                     details={"identifier": device.identifier})
    return device
