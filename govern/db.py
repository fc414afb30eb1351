"""Engines, sessions, and the per-transaction tenant scope that row-level security reads."""

from __future__ import annotations

import time
import uuid
from contextlib import contextmanager

from sqlalchemy import create_engine, event, exc, text
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker, with_loader_criteria

TENANT_SETTING = "govern.tenant_id"
# A pooled connection is pinged at checkout only after this long in the pool: a ping on every
# checkout is one more round trip per request (a tenth of a one-ping ingest's time). A
# connection that died sooner fails its request's first statement, which SQLAlchemy (and
# govern.domain.single) takes out of the pool; the app answers that request 503.
PING_AFTER_IDLE_S = 1.0


def make_engine(url: str, *, pool_size: int = 5, statement_timeout_ms: int = 30_000,
                **kwargs) -> Engine:
    engine = create_engine(
        url,
        **kwargs,
        pool_size=pool_size,
        max_overflow=pool_size,
        pool_recycle=1800,
        connect_args={
            "connect_timeout": 5,
            # every session in UTC, whatever the server's default: instants are read and
            # written as UTC, and day boundaries in SQL are UTC days. No JIT: the planner's
            # cost of a zone test per row (a subplan per ping) crosses JIT's thresholds, and
            # compiling the plan of a month's track (31 partitions, 489 functions) took 9.7 s
            # of a 9.9 s read that runs in 65 ms without it (docs/operations.md)
            "options": (f"-c statement_timeout={statement_timeout_ms} -c timezone=UTC "
                        "-c jit=off"),
            "application_name": "govern",
        },
    )
    _ping_when_idle(engine)
    return engine


def _ping_when_idle(engine: Engine) -> None:
    """pool_pre_ping, but only for a connection that sat in the pool PING_AFTER_IDLE_S."""

    @event.listens_for(engine, "checkin")
    def _checked_in(dbapi_connection, record):
        record.info["govern_idle_since"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _checked_out(dbapi_connection, record, proxy):
        since = record.info.get("govern_idle_since")
        if getattr(dbapi_connection, "broken", False) or dbapi_connection.closed:
            raise exc.DisconnectionError("connection broken while pooled")
        if since is None or time.monotonic() - since < PING_AFTER_IDLE_S:
            return
        try:
            engine.dialect.do_ping(dbapi_connection)
        except engine.dialect.loaded_dbapi.Error as error:
            raise exc.DisconnectionError(f"pooled connection is dead: {error}") from error


def make_sessionmaker(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(bind=engine, expire_on_commit=False, autoflush=True)


def tenant_scope_sql(tenant_id: uuid.UUID | str | None) -> str:
    """The statement that scopes the current transaction to a tenant (or to none).

    `SET LOCAL` rather than `set_config(..., true)`: the same transaction-local setting on
    PostgreSQL, and on a Citus coordinator with `citus.propagate_set_commands = 'local'`
    (set by `govern db distribute`) Citus sends it on to the workers, where the shards'
    row-level security reads it; set_config never reaches them. SET takes no parameters,
    so the value is a UUID parsed here (nothing else can reach the literal).
    """
    value = str(uuid.UUID(str(tenant_id))) if tenant_id else ""
    return f"SET LOCAL {TENANT_SETTING} = '{value}'"


@event.listens_for(Session, "after_begin")
def _apply_tenant_scope(session: Session, transaction, connection) -> None:
    """Every transaction starts scoped to the session's tenant, or to none.

    SET LOCAL is transaction-local, so a pooled connection handed to another request never
    carries the previous tenant.
    """
    connection.exec_driver_sql(tenant_scope_sql(session.info.get("tenant_id")))


@event.listens_for(Session, "do_orm_execute")
def _name_the_tenant(state) -> None:
    """Every ORM select, update and delete of a scoped session names its tenant
    (`tenant_id = :tenant` on each mapped table, joins and subqueries included), so on Citus
    it routes to the tenant's one shard instead of every shard; row-level security, which
    allows the same rows, stays as defence in depth. Unscoped sessions are left alone."""
    tenant_id = state.session.info.get("tenant_id")
    if not tenant_id or not (state.is_select or state.is_update or state.is_delete):
        return
    if state.is_column_load or state.is_relationship_load:
        return  # loads of an already-criteria'd parent carry the criteria themselves
    tenant = uuid.UUID(str(tenant_id))
    state.statement = state.statement.options(*(
        with_loader_criteria(cls, cls.tenant_id == tenant, include_aliases=True)
        for cls in _tenant_classes()))


_TENANT_CLASSES: list = []


def _tenant_classes() -> list:
    """Every mapped class (each has tenant_id: tests/db/test_citus_rules.py)."""
    if not _TENANT_CLASSES:
        from govern.models import Base

        _TENANT_CLASSES.extend(m.class_ for m in Base.registry.mappers
                               if "tenant_id" in m.columns)
    return _TENANT_CLASSES


def scope_to_tenant(session: Session, tenant_id: uuid.UUID | str | None) -> None:
    """Point the session at a tenant; takes effect at once, and for every later transaction."""
    session.info["tenant_id"] = tenant_id
    if session.in_transaction():
        session.execute(text(tenant_scope_sql(tenant_id)))


@contextmanager
def tenant_session(factory: sessionmaker[Session], tenant_id):
    """A session for one unit of work in one tenant: commit on success, rollback on error."""
    session = factory()
    session.info["tenant_id"] = tenant_id
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()
