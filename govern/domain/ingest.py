"""Governed capture: judge each ping of a batch, store what survives at its precision,
feed the rollups, all in one transaction."""

from __future__ import annotations

import bisect
import datetime as dt
import threading
import uuid
from collections import Counter
from dataclasses import dataclass, field

import h3.api.basic_int as h3
import orjson
from prometheus_client import Counter as MetricCounter
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from govern.domain import diagnostics
from govern.domain.collection import effective_windows
from govern.domain.policy import DEFAULT_POLICY
from govern.ingest.validate import Ping, Skipped, validate_ping
from govern.policy import consent, cutoffs, door
from govern.policy.consent import ConsentEvent
from govern.policy.precision import Snapper
from govern.policy.windows import in_collection_window, next_change, parse_windows
from govern.sql import pings as sql

ROLLUP_RESOLUTION = 9
PING_OUTCOMES = MetricCounter("govern_pings_total", "Pings by outcome", ["outcome"])


@dataclass
class IngestResult:
    accepted: int = 0
    duplicates: int = 0
    dropped: Counter = field(default_factory=Counter)
    rejected: list = field(default_factory=list)
    ignored: int = 0  # items that are no location (counted in diagnostics, not answered)
    server_time: int = 0  # accepted-or-judged pings timed at receipt (their client sent none)

    def as_dict(self) -> dict:
        return {"accepted": self.accepted, "duplicates": self.duplicates,
                "dropped": dict(self.dropped), "rejected": self.rejected}


@dataclass
class PurposeInfo:
    """What the door needs of one live purpose."""

    key: str
    bit: int
    requires_consent: bool
    precision_m: int
    retention_days: int
    aggregate_use: bool
    window_floor: dt.datetime | None = None  # govern.policy.cutoffs


@dataclass
class SubjectInfo:
    subject_id: uuid.UUID
    timezone: str | None
    collection_windows: list | None
    collection_blocked: bool


@dataclass
class Context:
    """Everything the door needs about one subject, loaded once per batch."""

    subject: SubjectInfo
    policy: dict
    purposes: list[PurposeInfo]
    consents: list[ConsentEvent]
    duty: door.StateTimeline
    zones_apply: bool = True  # a tenant-wide zone or one of the subject's exists

    @property
    def timezone(self) -> str:
        return self.subject.timezone or self.policy["timezone"]


def load_context(session: Session, subject_id: uuid.UUID) -> Context:
    """One round trip, in the session's tenant (named in every table of the statement)."""
    row = session.execute(sql.LOAD_CONTEXT, {"tenant_id": session.info.get("tenant_id"),
                                             "s": subject_id}).one_or_none()
    if row is None:
        raise LookupError(f"subject {subject_id} not found")
    return context_of(row, subject_id)


def context_of(row, subject_id: uuid.UUID) -> Context:
    """The Context from a row of sql.LOAD_CONTEXT's columns (attribute access)."""
    purposes = [PurposeInfo(*p) for p in zip(
        row.p_key or (), row.p_bit or (), row.p_consent or (), row.p_precision or (),
        row.p_retention or (), row.p_aggregate or (), row.p_floor or (), strict=True)]
    consents = [ConsentEvent(*c) for c in zip(
        row.c_key or (), row.c_status or (), row.c_at or (), row.c_seq or (), strict=True)]
    if row.policy is None:  # every tenant gets version 1 at creation
        raise RuntimeError("tenant has no policy version")
    return Context(
        SubjectInfo(subject_id, row.timezone, row.collection_windows, row.collection_blocked),
        {**DEFAULT_POLICY, **row.policy}, purposes, consents,
        door.duty_timeline(list(zip(row.d_at or (), row.d_on or (), strict=True))),
        zones_apply=row.zones_apply)


def window_timeline(ctx: Context, start: dt.datetime, end: dt.datetime) -> door.StateTimeline:
    """Collection-window state from `start` to `end`, as a timeline of flips."""
    windows = parse_windows(effective_windows(ctx.subject, ctx.policy))
    if not windows:
        return door.StateTimeline(True, [])
    initial = in_collection_window(windows, ctx.timezone, start)
    changes, cursor = [], start
    while True:
        cursor = next_change(windows, ctx.timezone, cursor)
        if cursor is None or cursor > end:
            break
        changes.append(cursor)
    return door.StateTimeline(initial, changes)


@dataclass
class Admitted:
    index: int
    ping: Ping
    mask: int
    precision_m: int


@dataclass
class _Serving:
    """What follows from one set of purposes (per batch, not per ping)."""

    mask: int  # purpose bits, as stored
    precision_m: int


def judge(pings: list[tuple[int, Ping]], ctx: Context, now: dt.datetime,
          result: IngestResult) -> list[Admitted]:
    """Apply the door's rules in order; count each dropped ping under its first reason."""
    admitted = []
    if not pings:
        return admitted
    dropped = result.dropped
    if ctx.subject.collection_blocked:  # checked after "future" for each ping
        for _, ping in pings:
            dropped["future" if door.is_from_the_future(ping.t, now)
                    else "subject_blocked"] += 1
        return admitted
    times = [p.t for _, p in pings]
    windows = window_timeline(ctx, min(times), max(times))
    instants, masks = consent.allowed_timeline([p.requires_consent for p in ctx.purposes],
                                               [p.key for p in ctx.purposes], ctx.consents)
    # A late ping serves no purpose it recorded before a withdrawal of (the withdrawal was
    # applied to stored pings already) nor whose window has closed for it: it would keep
    # that purpose, and its finer precision, on disk where no run would take it away. Both
    # are the cut-offs reads and retention apply (govern.policy.cutoffs).
    withdrawn = consent.last_withdrawals(ctx.consents, now)
    cut_by_withdrawal = _mask_until([(withdrawn.get(p.key), n)
                                     for n, p in enumerate(ctx.purposes)])
    cut_by_window = _mask_until([(cutoffs.window_start(p.retention_days, p.window_floor, now), n)
                                 for n, p in enumerate(ctx.purposes)])
    serving_by_mask: dict[int, _Serving] = {}

    def serving_for(local: int) -> _Serving:
        if local not in serving_by_mask:
            serving = [p for n, p in enumerate(ctx.purposes) if local >> n & 1]
            serving_by_mask[local] = _Serving(
                sum(1 << p.bit for p in serving),
                door.finest_precision([p.precision_m for p in serving]))
        return serving_by_mask[local]
    future_after = now + door.FUTURE_TOLERANCE
    min_accuracy = ctx.policy["min_accuracy_m"]
    window_always = not windows.changes and windows.initial
    duty = ctx.duty
    duty_always = not duty.changes and duty.initial
    one_mask = masks[0] if not instants else None
    for index, ping in pings:
        t = ping.t
        if t > future_after:
            reason = "future"
        elif ping.acc is not None and min_accuracy is not None and ping.acc > min_accuracy:
            reason = "inaccurate"
        else:
            local = (one_mask if not instants
                     else masks[bisect.bisect_right(instants, t)]) & ~cut_by_withdrawal(t)
            alive = local & ~cut_by_window(t) if local else 0
            if not local:
                reason = "no_consent"
            elif not alive:
                reason = "expired"
            elif not window_always and not windows.at(t):
                reason = "outside_window"
            elif not duty_always and not duty.at(t):
                reason = "off_duty"
            else:
                serving = serving_for(alive)
                admitted.append(Admitted(index, ping, serving.mask, serving.precision_m))
                continue
        dropped[reason] += 1
    return admitted


def _mask_until(cuts: list[tuple[dt.datetime | None, int]]):
    """For cut-offs (instant or None, purpose n): a function of t giving the mask of the
    purposes whose cut-off t is at or before (a ping recorded then no longer serves them)."""
    cuts = sorted((c, n) for c, n in cuts if c is not None)
    times = [c for c, _ in cuts]
    from_k = [0] * (len(cuts) + 1)  # from_k[k]: purposes of cuts[k:]
    for k in range(len(cuts) - 1, -1, -1):
        from_k[k] = from_k[k + 1] | 1 << cuts[k][1]
    return lambda t: from_k[bisect.bisect_left(times, t)]


class PartitionCache:
    """Day partitions known to exist, so ingest asks the database only for new days."""

    def __init__(self):
        self.known: set[dt.date] = set()
        self.lock = threading.Lock()

    def ensure(self, engine: Engine, days: set[dt.date]) -> None:
        missing = days - self.known
        if not missing:
            return
        # Its own short transaction: creating a partition locks the parent table briefly,
        # and that lock must not be held for the rest of a batch.
        with engine.begin() as conn:
            for day in sorted(missing):
                conn.execute(sql.ENSURE_PARTITION, {"day": day})
        with self.lock:
            self.known |= missing

    def forget(self) -> None:
        with self.lock:
            self.known.clear()


PARTITIONS = PartitionCache()


# Snappers by precision, kept across batches (their band caches are pure functions of the
# precision); a race between threads at worst computes a band twice.
_SNAPPERS: dict[int, Snapper] = {}


def rollup_cells(admitted: list[Admitted], aggregate_bits: int) -> list[int | None]:
    """The H3 cell (resolution 9) of each admitted ping's stored position, or None for pings
    that feed no rollup. The stored position is govern_snap's, which the reference grid
    mirrors bit for bit, so Python can name the cell before PostgreSQL stores the point."""
    snappers = _SNAPPERS
    if len(snappers) > 64 or sum(len(s.bands) for s in snappers.values()) > 100_000:
        snappers.clear()  # bounded: a few precisions, the bands devices actually visit
    cells: list[int | None] = []
    latlng_to_cell = h3.latlng_to_cell
    for a in admitted:
        if a.mask & aggregate_bits:
            snapper = snappers.get(a.precision_m)
            if snapper is None:
                snapper = snappers[a.precision_m] = Snapper(a.precision_m)
            lat, lon = snapper(a.ping.lat, a.ping.lon)
            cells.append(latlng_to_cell(lat, lon, ROLLUP_RESOLUTION))
        else:
            cells.append(None)
    return cells


def _json(value) -> bytes:
    return orjson.dumps(value)


def store_statement(tenant_id: uuid.UUID, device_id: uuid.UUID, ctx: Context,
                    admitted: list[Admitted]):
    """The store statement for a batch's admitted pings and its parameters."""
    aggregate_bits = 0
    for p in ctx.purposes:
        if p.aggregate_use:
            aggregate_bits |= 1 << p.bit
    cells = rollup_cells(admitted, aggregate_bits) if aggregate_bits else None
    rows = []
    for n, a in enumerate(admitted):
        ping = a.ping
        rows.append({"i": a.index, "t": ping.t, "k": ping.client_id or "", "mask": a.mask,
                     "p": a.precision_m, "lon": ping.lon, "lat": ping.lat, "acc": ping.acc,
                     "alt": ping.alt, "speed": ping.speed, "heading": ping.heading,
                     "battery": ping.battery, "activity": ping.activity,
                     "cell": cells[n] if cells else None,
                     "srv": ping.time_source == "server" or None})
    statement = sql.STORE_BATCH if ctx.zones_apply else sql.STORE_BATCH_NO_ZONES
    return statement, {
        "tenant_id": tenant_id, "device_id": device_id, "subject_id": ctx.subject.subject_id,
        "rows": _json(rows).decode()}


def stored_of(admitted: list[Admitted], row) -> tuple[int, int, list[int]]:
    """(stored, duplicates, indexes inside a zone) from the store statement's one row."""
    stored, zoned, _cells = row
    zoned = zoned or []
    return stored, len(admitted) - len(zoned) - stored, zoned


def store(session: Session, tenant_id: uuid.UUID, device_id: uuid.UUID, ctx: Context,
          admitted: list[Admitted], now: dt.datetime) -> tuple[int, int, list[int]]:
    """Drop pings in privacy zones, insert the rest at precision and feed the rollups, in one
    statement. Returns (stored, duplicates, indexes of the pings inside a zone)."""
    statement, params = store_statement(tenant_id, device_id, ctx, admitted)
    return stored_of(admitted, session.execute(statement, params).one())


def _no_partition(exc: DBAPIError) -> bool:
    return "no partition of relation" in str(exc.orig or exc)


def ingest(session: Session, engine: Engine, tenant_id: uuid.UUID, device_id: uuid.UUID,
           subject_id: uuid.UUID, items: list, now: dt.datetime | None = None,
           touch_device: bool = False, source: str = "native",
           ignored: int = 0) -> IngestResult:
    """Judge and store one batch, and count what became of it in the device's diagnostics.
    The caller commits: acknowledged means committed (the counts too).

    `touch_device`: record the device as seen (token-authenticated devices are marked seen
    at authentication, throttled; a device named by identifier alone is not). `source`: the
    client format, for the diagnostics; `ignored`: messages its converter set aside as no
    location at all. A ping whose client sent no time is timed `now`, the receipt time."""
    now = now or dt.datetime.now(dt.UTC)
    result = IngestResult(ignored=ignored)
    valid = validate_items(items, now, result)
    ctx = load_context(session, subject_id)
    admitted = judge(valid, ctx, now, result)
    if admitted:
        PARTITIONS.ensure(engine, {a.ping.t.date() for a in admitted})
        try:
            with session.begin_nested():
                stored, dupes, zoned = store(session, tenant_id, device_id, ctx, admitted, now)
        except DBAPIError as exc:
            if not _no_partition(exc):
                raise
            PARTITIONS.forget()  # a partition was dropped under us: make it again, once
            PARTITIONS.ensure(engine, {a.ping.t.date() for a in admitted})
            stored, dupes, zoned = store(session, tenant_id, device_id, ctx, admitted, now)
        if zoned:
            result.dropped["privacy_zone"] += len(zoned)
        result.accepted, result.duplicates = stored, dupes
    if touch_device:
        session.execute(sql.TOUCH_DEVICE, {"tenant_id": tenant_id, "device_id": device_id})
    diagnostics.record(session, tenant_id, device_id, outcome_of(result, source, now), now)
    count_outcomes(result)
    return result


def validate_items(items: list, now: dt.datetime, result: IngestResult) -> list[tuple[int, Ping]]:
    """Validate each item on its own: the valid pings (with their index); the rest counted
    in `result` (rejected with their errors, set aside by the converter, or dropped)."""
    valid: list[tuple[int, Ping]] = []
    for index, raw in enumerate(items):
        if type(raw) is Skipped:
            if raw.dropped:
                result.dropped[raw.reason] += 1
            else:
                result.ignored += 1
            continue
        ping, errors = validate_ping(raw, now)
        if ping is None:
            client_id = raw.get("id") if isinstance(raw, dict) else None
            result.rejected.append({"index": index, "id": client_id, "errors": errors})
        else:
            if ping.time_source == "server":
                result.server_time += 1
            valid.append((index, ping))
    return valid


def outcome_of(result: IngestResult, source: str, now: dt.datetime):
    """What the device's ingest diagnostics count of this batch."""
    return diagnostics.outcome_of(
        source, result.accepted, result.duplicates, result.ignored, result.server_time,
        result.dropped, result.rejected, now)


def count_outcomes(result: IngestResult) -> None:
    if result.accepted:
        PING_OUTCOMES.labels("accepted").inc(result.accepted)
    if result.duplicates:
        PING_OUTCOMES.labels("duplicate").inc(result.duplicates)
    if result.rejected:
        PING_OUTCOMES.labels("rejected").inc(len(result.rejected))
    if result.ignored:
        PING_OUTCOMES.labels("ignored").inc(result.ignored)
    for reason, n in result.dropped.items():
        PING_OUTCOMES.labels(f"dropped_{reason}").inc(n)
