"""The statements of one device request's ingest on a pipelined connection
(govern.domain.single): the same SQL as the general path, in fewer round trips.

`DEVICE_CONTEXT` is the token lookup (govern.sql.tokens.TOKEN_LOOKUP) and the door's context
(govern.sql.pings.LOAD_CONTEXT) of the token's subject in one statement; both are built from
those statements' own text, so the two paths cannot drift apart. Every statement is
compiled once to psycopg's placeholders (`%(name)s`), since this path runs on the DBAPI
connection, not through SQLAlchemy.
"""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.dialects.postgresql.psycopg import PGDialect_psycopg

from govern.sql import diagnostics, pings, tokens

_DIALECT = PGDialect_psycopg()


def compiled(statement) -> str:
    """A SQLAlchemy text() statement as psycopg runs it (named `%(...)s` placeholders)."""
    return str(statement.compile(dialect=_DIALECT))


_SUBJECT_PARAM = "AND s.subject_id = :s"
assert pings.LOAD_CONTEXT.text.count(_SUBJECT_PARAM) == 1

# One row per live token: the token's columns, then (for a device token whose device is
# live) the door's context of its subject, `ctx_found` true; a member token or a revoked
# device leaves the context columns NULL. No row: the token is unknown, revoked or expired.
DEVICE_CONTEXT = compiled(text(
    "SELECT tok.*, ctx.* FROM (" + tokens.TOKEN_LOOKUP.text + ") tok\n"
    "LEFT JOIN LATERAL (SELECT true AS ctx_found, x.* FROM ("
    + pings.LOAD_CONTEXT.text.replace(_SUBJECT_PARAM, "AND s.subject_id = tok.subject_id")
    + ") x) ctx ON true"))

STORE_BATCH = compiled(pings.STORE_BATCH)
STORE_BATCH_NO_ZONES = compiled(pings.STORE_BATCH_NO_ZONES)
RECORD = compiled(diagnostics.RECORD)
