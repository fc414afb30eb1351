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
store_statement, outcome_of); only the transport differs. When a day's partition was
dropped under the cache (the store fails), the transaction is rolled back and the whole
request run again from the start, once, in a fresh transaction (nothing of the first
attempt was committed).
"""

from __future__ import annotations

import datetime as dt

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


class NotADevice(Exception):
    """The token is live but a member's (the caller answers 403)."""


class DeviceRequest:
    """One device request: authenticate its token, then ingest its batch, on one connection
    checked out of the engine's pool for the request (close() returns it, rolled back if
    uncommitted)."""

    def __init__(self, engine: Engine, token: str, touch_seconds: int):
        self.engine = engine
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
            self.fairy = self.engine.raw_connection()
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
        return DBAPIError.instance(statement, None, exc, psycopg.Error,
                                   connection_invalidated=broken,
                                   dialect=self.engine.dialect)

    def _rollback(self) -> None:
        if self.fairy is None:
            return
        try:
            self.conn.rollback()
        except psycopg.Error:
            self.fairy.invalidate()
            self.fairy = None

    # ---- 1. the token and the context ---------------------------------------------------

    def authenticate(self) -> Principal | None:
        """The token's principal (None: unknown, revoked or expired; NotADevice: a member's),
        with its subject's door context loaded in the same transaction."""
        if self.tenant_id is None:
            return None
        conn = self.conn
        try:
            with conn.pipeline():
                conn.execute(tenant_scope_sql(self.tenant_id))
                cur = conn.cursor(row_factory=namedtuple_row)
                cur.execute(sql.DEVICE_CONTEXT, {"tenant_id": self.tenant_id,
                                                 "token_hash": hash_token(self.token)})
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
        for attempt in (1, 2):
            try:
                return self._ingest(items, now, source, ignored)
            except _PartitionGone:
                if attempt == 2:
                    raise
                self._rollback()
                PARTITIONS.forget()  # a partition was dropped under us: make it again
                if self.authenticate() is None:  # the same token, in a fresh transaction
                    raise TokenGone from None
        raise AssertionError("unreachable")

    def _ingest(self, items, now, source, ignored) -> IngestResult:
        p, ctx = self.principal, self.ctx
        result = IngestResult(ignored=ignored)
        valid = validate_items(items, now, result)
        admitted = judge(valid, ctx, now, result)
        conn = self.conn
        if admitted:
            PARTITIONS.ensure(self.engine, {a.ping.t.date() for a in admitted})
            statement, params = store_statement(p.tenant_id, p.device_id, ctx, admitted)
            text = _COMPILED[id(statement)]
            try:
                row = conn.execute(text, params).fetchone()
            except psycopg.Error as exc:
                if "no partition of relation" in str(exc):
                    raise _PartitionGone from exc
                raise self._db_error(exc, text) from exc
            stored, dupes, zoned = stored_of(admitted, row)
            if zoned:
                result.dropped["privacy_zone"] += len(zoned)
            result.accepted, result.duplicates = stored, dupes
        outcome = outcome_of(result, source, now)
        try:
            with conn.pipeline():
                conn.execute(sql.RECORD, diagnostics.record_params(p.tenant_id, p.device_id,
                                                                   outcome, now))
                conn.commit()
        except psycopg.Error as exc:
            raise self._db_error(exc, sql.RECORD) from exc
        diagnostics.count_metrics(outcome)
        count_outcomes(result)
        return result


class _PartitionGone(Exception):
    pass


class TokenGone(Exception):
    """The token stopped authenticating between two attempts of one request (the caller
    answers as to an unknown token)."""
