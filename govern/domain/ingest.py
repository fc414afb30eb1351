"""Governed capture: judge each ping of a batch, store what survives at its precision,
feed the rollups, all in one transaction."""

from __future__ import annotations

import datetime as dt
import threading
import uuid
from collections import Counter
from dataclasses import dataclass, field

import h3.api.basic_int as h3
import orjson
from prometheus_client import Counter as MetricCounter
from sqlalchemy import select, text
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from govern.domain import rollup_periods
from govern.domain.collection import effective_windows
from govern.domain.policy import current_policy
from govern.ingest.validate import Ping, validate_ping
from govern.models import ConsentEvent as ConsentRow
from govern.models import Purpose, Subject
from govern.policy import door
from govern.policy.consent import ConsentEvent, purposes_allowed
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

    def as_dict(self) -> dict:
        return {"accepted": self.accepted, "duplicates": self.duplicates,
                "dropped": dict(self.dropped), "rejected": self.rejected}


@dataclass
class Context:
    """Everything the door needs about one subject, loaded once per batch."""

    subject: Subject
    policy: dict
    purposes: list[Purpose]
    consents: list[ConsentEvent]
    duty: door.StateTimeline

    @property
    def timezone(self) -> str:
        return self.subject.timezone or self.policy["timezone"]


def load_context(session: Session, subject_id: uuid.UUID) -> Context:
    subject = session.get(Subject, (session.info["tenant_id"], subject_id))
    purposes = list(session.scalars(select(Purpose).where(Purpose.archived_at.is_(None))))
    keys = {p.purpose_id: p.key for p in purposes}
    consents = [
        ConsentEvent(keys[row.purpose_id], row.status, row.at, row.seq)
        for row in session.scalars(select(ConsentRow).where(ConsentRow.subject_id == subject_id))
        if row.purpose_id in keys
    ]
    duty_rows = session.execute(
        text("SELECT at, on_duty FROM duty_events WHERE subject_id = :s ORDER BY at, seq"),
        {"s": subject_id},
    ).all()
    return Context(subject, current_policy(session), purposes, consents,
                   door.duty_timeline([(r.at, r.on_duty) for r in duty_rows]))


def window_timeline(ctx: Context, start: dt.datetime, end: dt.datetime) -> door.StateTimeline:
    """Collection-window state from `start` to `end`, as a timeline of flips."""
    windows = parse_windows(effective_windows(ctx.subject, ctx.policy))
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


def judge(pings: list[tuple[int, Ping]], ctx: Context, now: dt.datetime,
          result: IngestResult) -> list[Admitted]:
    """Apply the door's rules in order; count each dropped ping under its first reason."""
    by_key = {p.key: p for p in ctx.purposes}
    needs_consent = {p.key: p.requires_consent for p in ctx.purposes}
    windows = None
    if pings:
        times = [p.t for _, p in pings]
        windows = window_timeline(ctx, min(times), max(times))
    admitted = []
    for index, ping in pings:
        if door.is_from_the_future(ping.t, now):
            reason = "future"
        elif ctx.subject.collection_blocked:
            reason = "subject_blocked"
        elif door.is_too_inaccurate(ping.acc, ctx.policy["min_accuracy_m"]):
            reason = "inaccurate"
        else:
            serving = [by_key[k] for k in purposes_allowed(needs_consent, ctx.consents, ping.t)]
            if not serving:
                reason = "no_consent"
            elif door.is_past_every_window(ping.t, [p.retention_days for p in serving], now):
                reason = "expired"
            elif not windows.at(ping.t):
                reason = "outside_window"
            elif not ctx.duty.at(ping.t):
                reason = "off_duty"
            else:
                mask = 0
                for p in serving:
                    mask |= 1 << p.bit
                precision = door.finest_precision([p.precision_m for p in serving])
                admitted.append(Admitted(index, ping, mask, precision))
                continue
        result.dropped[reason] += 1
    return admitted


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


def _rollup_cells(rows, aggregate_mask: int) -> list[dict]:
    cells: Counter = Counter()
    for t, mask, lon, lat in rows:
        if mask & aggregate_mask:
            bucket = t.replace(minute=0, second=0, microsecond=0)
            cells[(bucket, h3.latlng_to_cell(lat, lon, ROLLUP_RESOLUTION))] += 1
    # in key order: two batches crossing the same cells lock them in the same order, so
    # concurrent upserts queue instead of deadlocking
    return [{"bucket": bucket, "cell": cell, "r8": h3.cell_to_parent(cell, 8),
             "r7": h3.cell_to_parent(cell, 7), "r6": h3.cell_to_parent(cell, 6),
             "r5": h3.cell_to_parent(cell, 5), "n": n}
            for (bucket, cell), n in sorted(cells.items())]


def _json(value) -> str:
    return orjson.dumps(value).decode()


def store(session: Session, tenant_id: uuid.UUID, device_id: uuid.UUID, ctx: Context,
          admitted: list[Admitted], now: dt.datetime) -> tuple[int, int]:
    """Insert at precision and feed rollups; returns (stored, duplicates)."""
    rows = [{"t": a.ping.t, "k": a.ping.client_id or "", "mask": a.mask, "p": a.precision_m,
             "lon": a.ping.lon, "lat": a.ping.lat, "acc": a.ping.acc, "alt": a.ping.alt,
             "speed": a.ping.speed, "heading": a.ping.heading, "battery": a.ping.battery,
             "activity": a.ping.activity} for a in admitted]
    ids = {"tenant_id": tenant_id, "device_id": device_id,
           "subject_id": ctx.subject.subject_id}
    inserted = session.execute(sql.INSERT_PINGS, {**ids, "rows": _json(rows)}).all()
    aggregate_mask = 0
    for p in ctx.purposes:
        if p.aggregate_use:
            aggregate_mask |= 1 << p.bit
    if inserted and aggregate_mask:
        cells = _rollup_cells(inserted, aggregate_mask)
        if cells:
            first, last = cells[0]["bucket"], cells[-1]["bucket"]
            if rollup_periods.touches_closed_period(first, now):  # a late ping
                rollup_periods.invalidate(session, tenant_id, first, last)
            session.execute(sql.UPSERT_ROLLUPS, {"tenant_id": tenant_id,
                                                 "subject_id": ctx.subject.subject_id,
                                                 "cells": _json(cells)})
    return len(inserted), len(admitted) - len(inserted)


def _no_partition(exc: DBAPIError) -> bool:
    return "no partition of relation" in str(exc.orig or exc)


def ingest(session: Session, engine: Engine, tenant_id: uuid.UUID, device_id: uuid.UUID,
           subject_id: uuid.UUID, items: list, now: dt.datetime | None = None,
           touch_device: bool = False) -> IngestResult:
    """Judge and store one batch. The caller commits: acknowledged means committed.

    `touch_device`: record the device as seen (token-authenticated devices are marked seen
    at authentication, throttled; a device named by identifier alone is not)."""
    now = now or dt.datetime.now(dt.UTC)
    result = IngestResult()
    valid: list[tuple[int, Ping]] = []
    for index, raw in enumerate(items):
        ping, errors = validate_ping(raw)
        if ping is None:
            client_id = raw.get("id") if isinstance(raw, dict) else None
            result.rejected.append({"index": index, "id": client_id, "errors": errors})
        else:
            valid.append((index, ping))
    ctx = load_context(session, subject_id)
    admitted = judge(valid, ctx, now, result)
    if admitted:
        points = [{"lon": a.ping.lon, "lat": a.ping.lat, "i": a.index} for a in admitted]
        inside = {r[0] for r in session.execute(sql.IN_ZONES, {
            "points": _json(points), "subject_id": subject_id})}
        if inside:
            result.dropped["privacy_zone"] += len(inside)
            admitted = [a for a in admitted if a.index not in inside]
    if admitted:
        PARTITIONS.ensure(engine, {a.ping.t.date() for a in admitted})
        try:
            with session.begin_nested():
                stored, dupes = store(session, tenant_id, device_id, ctx, admitted, now)
        except DBAPIError as exc:
            if not _no_partition(exc):
                raise
            PARTITIONS.forget()  # a partition was dropped under us: make it again, once
            PARTITIONS.ensure(engine, {a.ping.t.date() for a in admitted})
            stored, dupes = store(session, tenant_id, device_id, ctx, admitted, now)
        result.accepted, result.duplicates = stored, dupes
    if touch_device:
        session.execute(sql.TOUCH_DEVICE, {"tenant_id": tenant_id, "device_id": device_id})
    _count(result)
    return result


def _count(result: IngestResult) -> None:
    if result.accepted:
        PING_OUTCOMES.labels("accepted").inc(result.accepted)
    if result.duplicates:
        PING_OUTCOMES.labels("duplicate").inc(result.duplicates)
    if result.rejected:
        PING_OUTCOMES.labels("rejected").inc(len(result.rejected))
    for reason, n in result.dropped.items():
        PING_OUTCOMES.labels(f"dropped_{reason}").inc(n)
