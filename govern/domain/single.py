"""A device's ingest request in few round trips: the same governance as govern.domain.ingest,
on one pooled psycopg connection in pipeline mode, in one transaction.

The general path (a SQLAlchemy session) costs a dozen round trips for one ping: the pool's
ping, BEGIN, the tenant scope twice, the token, the context, a savepoint, the store, its
release, the diagnostics, COMMIT. On two cores shared with PostgreSQL each is a pair of
context switches. Here:

1. BEGIN, the tenant scope and the token with its subject's context (one statement,
   govern.sql.single.DEVICE_CONTEXT), pipelined: one round trip;
2. the store statement, when a ping passed the door: one round trip;
3. the diagnostics and COMMIT, pipelined: one round trip. The answer goes out only after
   COMMIT has returned: acknowledged means committed, as on the general path.

The door's decisions are govern.domain.ingest's own functions (validate_items, judge,
store_statement, outcome_of); only the transport differs.

With group commit on (govern.domain.group, GROUP_COMMIT), step 1 ends its transaction in the
same round trip (ROLLBACK: it only read), and steps 2 and 3 run in a transaction shared with
the other requests of the tenant waiting in this process at that moment, the same statements
for each; a request whose group failed runs again on its own, as here. When a day's partition was
dropped under the cache (the store fails), the transaction is rolled back and the whole
request run again from the start, once, in a fresh transaction (nothing of the first
attempt was committed).
"""

from __future__ import annotations

import datetime as dt
import threading
import uuid
from dataclasses import dataclass, field

import orjson
import psycopg
from psycopg.rows import namedtuple_row
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError

from govern.auth import Principal, hash_token, tenant_of_token, token_row_live
from govern.db import tenant_scope_sql
from govern.domain import diagnostics
from govern.domain.ingest import (
    PARTITIONS,
    IngestResult,
    context_of,
    count_outcomes,
    judge,
    outcome_of,
    store_statement,
    stored_of,
    validate_items,
)
from govern.sql import pings as pings_sql
from govern.sql import single as sql

_COMPILED = {id(pings_sql.STORE_BATCH): sql.STORE_BATCH,
             id(pings_sql.STORE_BATCH_NO_ZONES): sql.STORE_BATCH_NO_ZONES}


@dataclass(eq=False)
class Work:
    """One request's batch, judged by the door and ready to store: the store statement (None
    when no ping passed the door) and, once stored, its per-ping result. Steps 2 and 3 of
    the module's description take a Work, alone (DeviceRequest) or in a group."""

    tenant_id: uuid.UUID
    device_id: uuid.UUID
    admitted: list
    result: IngestResult
    store: tuple[str, dict] | None
    source: str
    now: dt.datetime
    order: tuple = ()  # lock order within a group (govern.domain.group)
    outcome: object = None
    # set by govern.domain.group: the slot's state and its wake-up
    state: str | None = None
    error: Exception | None = None
    lead: bool = False
    wake: threading.Event = field(default_factory=threading.Event)

    def stored(self, row) -> None:
        """Count the store statement's row in the result."""
        stored, dupes, zoned = stored_of(self.admitted, row)
        if zoned:
            self.result.dropped["privacy_zone"] += len(zoned)
        self.result.accepted, self.result.duplicates = stored, dupes

    def record_params(self) -> dict:
        """sql.RECORD's parameters for the outcome (after stored())."""
        self.outcome = outcome_of(self.result, self.source, self.now)
        return diagnostics.record_params(self.tenant_id, self.device_id, self.outcome,
                                         self.now)

    def counted(self) -> IngestResult:
        """Once committed: the process's metrics; the result."""
        diagnostics.count_metrics(self.outcome)
        count_outcomes(self.result)
        return self.result


def db_error(engine: Engine, exc: psycopg.Error, statement: str, broken: bool) -> DBAPIError:
    """A psycopg error as SQLAlchemy would raise it (the app's handlers answer 503/422/500 by
    its class)."""
    return DBAPIError.instance(statement, None, exc, psycopg.Error,
                               connection_invalidated=broken, dialect=engine.dialect)


class NotADevice(Exception):
    """The token is live but a member's (the caller answers 403)."""


class DeviceRequest:
    """One device request: authenticate its token, then ingest its batch, on one connection
    checked out of the engine's pool for the request (close() returns it, rolled back if
    uncommitted)."""

    def __init__(self, engine: Engine, token: str, touch_seconds: int, group=None):
        self.engine = engine
        self.group = group  # a govern.domain.group.GroupCommit, or None: one transaction
        self.token = token
        self.touch_seconds = touch_seconds
        self.tenant_id = tenant_of_token(token)
        self.fairy = None
        self.principal: Principal | None = None
        self.ctx = None

    # ---- the connection ----------------------------------------------------------------

    @property
    def conn(self) -> psycopg.Connection:
        if self.fairy is None:
            try:
                self.fairy = self.engine.raw_connection()
            except psycopg.Error as exc:  # the pool's connect is not wrapped: no server
                raise db_error(self.engine, exc, "connect", broken=True) from exc
        return self.fairy.driver_connection

    def close(self) -> None:
        fairy, self.fairy = self.fairy, None
        if fairy is not None:
            fairy.close()  # the pool rolls back whatever is left open

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def _db_error(self, exc: psycopg.Error, statement: str) -> DBAPIError:
        """As SQLAlchemy would raise it (the app's handlers answer 503/422/500 by its class),
        the connection dropped from the pool when it is broken."""
        conn = self.fairy.driver_connection if self.fairy is not None else None
        broken = conn is None or conn.closed or conn.broken
        if broken and self.fairy is not None:
            self.fairy.invalidate(exc)
            self.fairy = None
        return db_error(self.engine, exc, statement, broken)

    def rollback(self) -> None:
        if self.fairy is None:
            return
        try:
            self.conn.rollback()
        except psycopg.Error:
            self.fairy.invalidate()
            self.fairy = None

    # ---- 1. the token and the context ---------------------------------------------------

    def authenticate(self, keep_open: bool = True) -> Principal | None:
        """The token's principal (None: unknown, revoked or expired; NotADevice: a member's),
        with its subject's door context loaded in the same transaction; `keep_open` false
        ends that transaction in the same round trip (the group stores in its own)."""
        if self.tenant_id is None:
            return None
        conn = self.conn
        try:
            with conn.pipeline():
                conn.execute(tenant_scope_sql(self.tenant_id))
                cur = conn.cursor(row_factory=namedtuple_row)
                cur.execute(sql.DEVICE_CONTEXT, {"tenant_id": self.tenant_id,
                                                 "token_hash": hash_token(self.token)})
                if not keep_open and self.group is not None:
                    conn.rollback()
                row = cur.fetchone()
        except psycopg.Error as exc:
            raise self._db_error(exc, sql.DEVICE_CONTEXT) from exc
        if not token_row_live(self.engine, self.tenant_id, row, self.touch_seconds):
            return None
        if row.kind != "device":
            raise NotADevice
        if not row.ctx_found:
            raise LookupError(f"subject {row.subject_id} not found")
        self.principal = Principal(tenant_id=self.tenant_id, kind="device",
                                   token_id=row.token_id, device_id=row.device_id,
                                   subject_id=row.subject_id)
        self.ctx = context_of(row, row.subject_id)
        return self.principal

    # ---- 2 and 3. judge, store, count, commit --------------------------------------------

    def ingest(self, items: list, now: dt.datetime, source: str = "native",
               ignored: int = 0) -> IngestResult:
        """Judge and store the batch, count it in the device's diagnostics, commit. Returns
        only once committed."""
        if self.group is not None:
            work = self.judged(items, now, source, ignored)
            if self.group.commit(work, self):
                return work.counted()
            # the group's transaction was rolled back: this request again, on its own, from
            # its token (nothing of it was committed)
            if self.authenticate() is None:
                raise TokenGone
        for attempt in (1, 2):
            try:
                return self._ingest(items, now, source, ignored)
            except _PartitionGone:
                if attempt == 2:
                    raise
                self.rollback()
                PARTITIONS.forget()  # a partition was dropped under us: make it again
                if self.authenticate() is None:  # the same token, in a fresh transaction
                    raise TokenGone from None
        raise AssertionError("unreachable")

    def judged(self, items, now, source, ignored) -> Work:
        """The door's decisions on the batch (its day partitions made), as a Work to store."""
        p, ctx = self.principal, self.ctx
        result = IngestResult(ignored=ignored)
        valid = validate_items(items, now, result)
        admitted = judge(valid, ctx, now, result)
        store, order = None, ()
        if admitted:
            PARTITIONS.ensure(self.engine, {a.ping.t.date() for a in admitted})
            statement, params = store_statement(p.tenant_id, p.device_id, ctx, admitted)
            store = (_COMPILED[id(statement)], params)
            if self.group is not None:  # only a group orders its requests' statements
                order = _lock_order(admitted, params)
        return Work(p.tenant_id, p.device_id, admitted, result, store, source, now,
                    order=(order, str(p.device_id)))

    def _ingest(self, items, now, source, ignored) -> IngestResult:
        work = self.judged(items, now, source, ignored)
        conn = self.conn
        if work.store is not None:
            text, params = work.store
            try:
                row = conn.execute(text, params).fetchone()
            except psycopg.Error as exc:
                if "no partition of relation" in str(exc):
                    raise _PartitionGone from exc
                raise self._db_error(exc, text) from exc
            work.stored(row)
        try:
            with conn.pipeline():
                conn.execute(sql.RECORD, work.record_params())
                conn.commit()
        except psycopg.Error as exc:
            raise self._db_error(exc, sql.RECORD) from exc
        return work.counted()


def _lock_order(admitted: list, params: dict) -> tuple:
    """The first rollup row (hour, cell) the store statement locks, or (): several requests'
    statements in one transaction run in this order, so two groups upserting the same cells
    of one-ping requests lock them in the same order (as one statement does its rows)."""
    rows = orjson.loads(params["rows"])
    cells = [(a.ping.t.astimezone(dt.UTC).replace(minute=0, second=0, microsecond=0), r["cell"])
             for a, r in zip(admitted, rows, strict=True) if r["cell"] is not None]
    return min(cells) if cells else ()


class _PartitionGone(Exception):
    pass


class TokenGone(Exception):
    """The token stopped authenticating between two attempts of one request (the caller
    answers as to an unknown token)."""
