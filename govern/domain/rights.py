"""Data subject rights: access (a complete export) and erasure (with a tombstone), as
requests with due dates; and the disclosure records an access bundle lists."""

from __future__ import annotations

import datetime as dt
import io
import uuid
import zipfile
from collections.abc import Callable, Iterator

import orjson
from sqlalchemy.orm import Session, sessionmaker

from govern import jsontext
from govern.db import tenant_session
from govern.domain import audit
from govern.domain.holds import is_held
from govern.domain.policy import current_policy
from govern.domain.subjects import get_subject, retire_routes
from govern.exceptions import Conflict, Invalid, NotFound
from govern.sql import rights as sql

DEFAULT_DUE_DAYS = 30
ERASE_BATCH = 5000


# ---- requests ---------------------------------------------------------------------------------

def _request_view(row, now: dt.datetime) -> dict:
    d = dict(row._mapping)
    d["overdue"] = d["status"] == "open" and d["due_at"] < now
    return d


def create_request(session: Session, tenant_id: uuid.UUID, actor: str, *, subject_id,
                   kind: str, source: str, note: str | None = None,
                   now: dt.datetime, due_days: int = DEFAULT_DUE_DAYS,
                   received_at: dt.datetime | None = None, request_id: str | None = None) -> dict:
    get_subject(session, subject_id)
    received_at = received_at or now
    rid = uuid.uuid4()
    row = session.execute(sql.CREATE_REQUEST, {
        "t": tenant_id, "r": rid, "s": subject_id, "k": kind, "src": source,
        "received": received_at, "due": received_at + dt.timedelta(days=due_days),
        "note": note, "actor": actor}).one()
    audit.record(session, tenant_id, actor, f"request.{kind}", target_type="subject_request",
                 target_id=rid, subject_id=subject_id, request_id=request_id,
                 details={"source": source, "due_at": row.due_at})
    return _request_view(row, now)


def _tenant(session: Session):
    """The session's tenant, named in every statement (so each routes to one shard on
    Citus; row-level security stays as defence in depth)."""
    return session.info.get("tenant_id")


def get_request(session: Session, request_id: uuid.UUID, now: dt.datetime) -> dict:
    row = session.execute(sql.GET_REQUEST, {"t": _tenant(session), "r": request_id}).first()
    if row is None:
        raise NotFound("request")
    return _request_view(row, now)


def list_requests(session: Session, now: dt.datetime, *, overdue: bool | None = None,
                  status: str | None = None, subject_id=None) -> list[dict]:
    rows = session.execute(sql.LIST_REQUESTS, {
        "t": _tenant(session), "status": status, "s": subject_id, "overdue": bool(overdue),
        "now": now}).all()
    return [_request_view(r, now) for r in rows]


def complete_request(session: Session, tenant_id, actor: str, request_id: uuid.UUID,
                     evidence: dict, now: dt.datetime, status: str = "completed") -> dict:
    session.execute(sql.COMPLETE_REQUEST, {
        "t": tenant_id, "st": status, "e": jsontext.dumps(evidence), "r": request_id})
    req = get_request(session, request_id, now)
    audit.record(session, tenant_id, actor, f"request.{status}",
                 target_type="subject_request", target_id=request_id,
                 subject_id=req["subject_id"], details={"kind": req["kind"], **evidence})
    return req


def open_request(session: Session, request_id: uuid.UUID, kind: str,
                 now: dt.datetime) -> dict:
    req = get_request(session, request_id, now)
    if req["kind"] != kind:
        raise Conflict(f"This is an {req['kind']} request, not {kind}.", "wrong_kind")
    if req["status"] != "open":
        raise Conflict(f"This request is already {req['status']}.", "request_closed")
    return req


# ---- erasure ----------------------------------------------------------------------------------

def erase_subject(sessions: sessionmaker, tenant_id: uuid.UUID, subject_id: uuid.UUID,
                  actor: str, *, request_id: uuid.UUID | None = None,
                  on_batch: Callable[[int], None] | None = None,
                  now: dt.datetime) -> dict:
    """Delete the subject's pings (in batches), trips, devices, tokens, zones, duty history,
    and the consent ledger unless the tenant keeps proof of consent; scrub the subject and
    leave a tombstone. Refused while a legal hold applies. Rollups (aggregates) stay."""
    with tenant_session(sessions, tenant_id) as s:
        subject = get_subject(s, subject_id)
        if subject.erased_at is not None:
            raise Conflict("This subject was already erased.", "already_erased")
        if is_held(s, subject_id, now):
            raise Conflict("A legal hold applies to this subject; erasure must wait for it "
                           "to end.", "legal_hold")
        # stop collection first, so nothing new arrives while we delete
        s.execute(sql.BLOCK_FOR_ERASURE, {"t": tenant_id, "s": subject_id})
        s.execute(sql.REVOKE_DEVICE_TOKENS, {"t": tenant_id, "s": subject_id})
        keep_ledger = current_policy(s)["keep_consent_proof_on_erasure"]
    pings = 0
    while True:
        with tenant_session(sessions, tenant_id) as s:
            n = s.execute(sql.DELETE_PINGS_BATCH, {
                "t": tenant_id, "s": subject_id, "n": ERASE_BATCH}).rowcount
        pings += n
        if on_batch and n:
            on_batch(n)
        if n < ERASE_BATCH:
            break
    counts = {"pings": pings, "consent_events": 0}
    if not keep_ledger:
        # its own transaction, like the pings' batches: the SECURITY DEFINER function
        # deletes as the schema owner, and Citus refuses one transaction in which two roles
        # touch the same shard group ("placements that were modified in this transaction
        # by a different user"). A failure after it leaves the subject blocked and
        # unerased; erasing again finishes (the ledger is then already gone).
        with tenant_session(sessions, tenant_id) as s:
            counts["consent_events"] = s.execute(
                sql.ERASE_CONSENT_LEDGER, {"s": subject_id}).scalar()
    params = {"t": tenant_id, "s": subject_id}
    with tenant_session(sessions, tenant_id) as s:
        counts["trips"] = _delete_if_exists(s, "trips", subject_id)
        counts["stops"] = _delete_if_exists(s, "stops", subject_id)
        counts["tokens"] = s.execute(sql.DELETE_DEVICE_TOKENS, params).rowcount
        retire_routes(s, s.scalars(sql.SUBJECT_DEVICE_IDS, params).all())
        counts["devices"] = s.execute(sql.DELETE_DEVICES, params).rowcount
        counts["zones"] = s.execute(sql.DELETE_ZONES, params).rowcount
        counts["duty_events"] = s.execute(sql.DELETE_DUTY_EVENTS, params).rowcount
        s.execute(sql.SCRUB_SUBJECT, {**params, "now": now})
        s.execute(sql.INSERT_TOMBSTONE, {
            "t": tenant_id, "s": subject_id, "now": now, "actor": actor, "r": request_id,
            "c": jsontext.dumps(counts), "kept": keep_ledger})
        audit.record(s, tenant_id, actor, "subject.erase", target_type="subject",
                     target_id=subject_id, subject_id=subject_id,
                     details={"counts": counts, "consent_ledger_kept": keep_ledger,
                              "request_id": str(request_id) if request_id else None})
        if request_id is not None:
            complete_request(s, tenant_id, actor, request_id,
                             {"erased_at": now, "counts": counts}, now)
    return {"subject_id": str(subject_id), "erased_at": now, "counts": counts,
            "consent_ledger_kept": keep_ledger}


def _delete_if_exists(session: Session, table: str, subject_id) -> int:
    if not session.execute(sql.TABLE_EXISTS, {"t": table}).scalar():
        return 0
    return session.execute(sql.DELETE_SUBJECT_ROWS[table], {
        "t": _tenant(session), "s": subject_id}).rowcount


def tombstones(session: Session, subject_id=None) -> list[dict]:
    rows = session.execute(sql.TOMBSTONES, {"t": _tenant(session), "s": subject_id}).all()
    return [dict(r._mapping) for r in rows]


# ---- access: the export bundle ------------------------------------------------------------------

class _Sink(io.RawIOBase):
    """A write-only stream that hands out what was written, for a streamed zip."""

    def __init__(self):
        self.chunks: list[bytes] = []

    def writable(self) -> bool:
        return True

    def write(self, b) -> int:
        self.chunks.append(bytes(b))
        return len(b)

    def take(self) -> bytes:
        data = b"".join(self.chunks)
        self.chunks.clear()
        return data


def _json(value) -> bytes:
    return orjson.dumps(value, default=str, option=orjson.OPT_INDENT_2)


EXPORT_README = """This archive holds everything {tenant} holds about you in govern, as of {at}.

subject.json      your record, devices and legal holds (their periods)
pings.geojson     every stored location (GeoJSON, at the precision it is stored at)
consents.json     your consent history (grants and withdrawals)
access_log.json   who accessed your data, when, and under which purpose
disclosures.json  disclosures to authorities that included your data, except any the
                  law does not yet allow us to tell you about
requests.json     your access and erasure requests
{extra}"""




def export_bundle(sessions: sessionmaker, tenant_id: uuid.UUID, subject_id: uuid.UUID,
                  now: dt.datetime,
                  on_rows: Callable[[int], None] | None = None) -> Iterator[bytes]:
    """Stream a zip of everything held about the subject; pings are read with a server-side
    cursor and written as they come, so a million-ping subject never sits in memory."""
    sink = _Sink()
    with tenant_session(sessions, tenant_id) as s, \
            zipfile.ZipFile(sink, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        subject = get_subject(s, subject_id)
        ts = {"t": tenant_id, "s": subject_id}
        tenant_name = s.execute(sql.TENANT_NAME, ts).scalar()
        has_trips = s.execute(sql.HAS_TRIPS).scalar()
        extra = "trips.json        trips built from your locations\nstops.json        " \
            "stops (places you stayed) built from your locations\n" \
            if has_trips else ""
        zf.writestr("README.txt", EXPORT_README.format(tenant=tenant_name, at=now.isoformat(),
                                                       extra=extra))
        devices = [dict(r._mapping) for r in s.execute(sql.EXPORT_DEVICES, ts)]
        holds = [dict(r._mapping) for r in s.execute(sql.EXPORT_HOLDS, ts)]
        zf.writestr("subject.json", _json({
            "subject_id": subject.subject_id, "external_ref": subject.external_ref,
            "display_name": subject.display_name, "timezone": subject.timezone,
            "collection_windows": subject.collection_windows,
            "collection_blocked": subject.collection_blocked,
            "blocked_reason": subject.blocked_reason, "on_duty": subject.on_duty,
            "created_at": subject.created_at, "devices": devices, "legal_holds": holds}))
        yield sink.take()
        with zf.open("pings.geojson", "w", force_zip64=True) as out:
            out.write(b'{"type": "FeatureCollection", "features": [\n')
            first = True
            purposes = {r.bit: r.key for r in s.execute(sql.PURPOSE_BITS, ts)}
            result = s.execute(sql.EXPORT_PINGS, ts,
                execution_options={"yield_per": 5000})
            n = 0
            for r in result:
                feature = {"type": "Feature",
                           "geometry": {"type": "Point", "coordinates": [r.lon, r.lat]},
                           "properties": {
                               "t": r[0], "precision_m": r.precision_m,
                               "purposes": [k for b, k in purposes.items()
                                            if r.purpose_mask & (1 << b)],
                               "acc": r.acc, "alt": r.alt, "speed": r.speed,
                               "heading": r.heading, "battery": r.battery,
                               "activity": r.activity, "received_at": r.received_at,
                               "time_source": "server" if r.server_time else "device"}}
                out.write((b"" if first else b",\n") + orjson.dumps(feature, default=str))
                first = False
                n += 1
                if n % 5000 == 0:
                    if on_rows:
                        on_rows(5000)
                    yield sink.take()
            out.write(b"\n]}\n")
            if on_rows and n % 5000:
                on_rows(n % 5000)
        yield sink.take()
        consents = [dict(r._mapping) for r in s.execute(sql.EXPORT_CONSENTS, ts)]
        zf.writestr("consents.json", _json(consents))
        access = [dict(r._mapping) for r in s.execute(sql.EXPORT_ACCESS_LOG, ts)]
        zf.writestr("access_log.json", _json(access))
        disclosures = [dict(r._mapping)
                       for r in s.execute(sql.EXPORT_DISCLOSURES, ts)]
        zf.writestr("disclosures.json", _json(disclosures))
        zf.writestr("requests.json", _json(list_requests(s, now, subject_id=subject_id)))
        if has_trips:
            for table in ("trips", "stops"):
                rows = [dict(r._mapping)
                        for r in s.execute(sql.EXPORT_SUBJECT_ROWS[table], ts)]
                zf.writestr(f"{table}.json", _json(rows))
    yield sink.take()


def export_counts(session: Session, subject_id) -> dict:
    return dict(session.execute(sql.EXPORT_COUNTS, {"t": _tenant(session),
                                                                "s": subject_id}).one()._mapping)


# ---- disclosures ---------------------------------------------------------------------------

def create_disclosure(session: Session, tenant_id, actor: str, values: dict,
                      request_id: str | None = None) -> dict:
    for sid in values["subject_ids"]:
        get_subject(session, sid)
    if values.get("notified_at") is None and not values.get("not_notified_reason"):
        raise Invalid("Record when the client was notified, or why not.",
                      {"notified_at": ["give notified_at or not_notified_reason"]})
    did = uuid.uuid4()
    row = session.execute(sql.CREATE_DISCLOSURE, {
        "t": tenant_id, "d": did, "actor": actor, "range_from": None, "range_to": None,
        "notified_at": None, "not_notified_reason": None, **values}).one()
    for sid in values["subject_ids"]:
        audit.record(session, tenant_id, actor, "disclosure.create", target_type="disclosure",
                     target_id=did, subject_id=sid, request_id=request_id,
                     details={"authority": values["authority"],
                              "legal_basis": values["legal_basis"]})
    return dict(row._mapping)


def update_disclosure(session: Session, tenant_id, actor: str, disclosure_id, values: dict,
                      request_id: str | None = None) -> dict:
    get_disclosure(session, disclosure_id)  # 404 for an unknown (or another tenant's) one
    session.execute(sql.UPDATE_DISCLOSURE, {
        "t": tenant_id, "n": values.get("notified_at"),
        "r": values.get("not_notified_reason"), "d": disclosure_id})
    audit.record(session, tenant_id, actor, "disclosure.update", target_type="disclosure",
                 target_id=disclosure_id, request_id=request_id, details=values)
    return get_disclosure(session, disclosure_id)


def get_disclosure(session: Session, disclosure_id) -> dict:
    row = session.execute(sql.GET_DISCLOSURE, {"t": _tenant(session), "d": disclosure_id}).first()
    if row is None:
        raise NotFound("disclosure")
    return dict(row._mapping)


def list_disclosures(session: Session, subject_id=None) -> list[dict]:
    rows = session.execute(sql.LIST_DISCLOSURES, {
        "t": _tenant(session), "s": subject_id}).all()
    return [dict(r._mapping) for r in rows]
