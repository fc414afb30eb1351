"""The consent rule in SQL, written once: every statement that asks what a subject's
consent allows (reads, trips and their reports, retention, the consent state) embeds these
expressions, so a change here reaches them all (tests/test_one_definition.py guards it).

The ledger is append-only; the status of (subject, purpose) at an instant is its latest
event at or before that instant, of events at the same instant the later seq. It is the
rule govern.policy.consent folds in Python for the door (tests check both agree). Each
expression names the tenant, so that on a sharded cluster it stays on the tenant's shard.
"""

from __future__ import annotations

from sqlalchemy import text


def _latest(tenant: str, subject: str, purpose: str, at: str, columns: str) -> str:
    return f"""SELECT {columns} FROM consent_events ce
        WHERE ce.tenant_id = {tenant} AND ce.subject_id = {subject}
          AND ce.purpose_id = {purpose} AND ce.at <= {at}
        ORDER BY ce.at DESC, ce.seq DESC LIMIT 1"""


def status_at(tenant: str, subject: str, purpose: str, at: str) -> str:
    """'granted', 'withdrawn', or NULL when nothing was recorded up to `at`."""
    return f"({_latest(tenant, subject, purpose, at, 'ce.status')})"


def granted_at(tenant: str, subject: str, purpose: str, at: str) -> str:
    """True when the purpose may use the subject's location recorded at `at` (for purposes
    that require consent; the caller decides which do)."""
    return f"coalesce({status_at(tenant, subject, purpose, at)} = 'granted', false)"


def latest_event(tenant: str, subject: str, purpose: str, at: str) -> str:
    """A subquery for LATERAL: the event in force at `at` (status, at), or no row."""
    return f"({_latest(tenant, subject, purpose, at, 'ce.status, ce.at')})"


def withdrawn_until(tenant: str, subject: str, purpose: str, at: str) -> str:
    """The latest withdrawal recorded at or before `at`, or NULL: nothing recorded at or
    before it serves the purpose any more, whatever was granted since
    (govern.policy.cutoffs)."""
    return f"""(SELECT max(cw.at) FROM consent_events cw
        WHERE cw.tenant_id = {tenant} AND cw.subject_id = {subject}
          AND cw.purpose_id = {purpose} AND cw.status = 'withdrawn' AND cw.at <= {at})"""


# Each purpose's event in force for one subject at :at (purposes with none are absent).
STATE_AT = text(
    f"""
    SELECT p.purpose_id, e.status, e.at FROM purposes p
    CROSS JOIN LATERAL {latest_event("p.tenant_id", ":subject_id", "p.purpose_id", ":at")} e
    """
)

# Withdrawals recorded since the last run, per subject and purpose: the latest instant a
# withdrawal took effect (pings recorded up to it lose the purpose; one dated a moment
# ahead, within the clock skew consent recording allows, is applied at once) and the newest
# seq.
NEW_WITHDRAWALS = text(
    f"""
    SELECT c.subject_id, c.purpose_id, max(c.seq) AS seq,
           {withdrawn_until("c.tenant_id", "c.subject_id", "c.purpose_id",
                            "CAST('infinity' AS timestamptz)")} AS until
    FROM consent_events c
    WHERE c.seq > :after_seq AND c.status = 'withdrawn'
    GROUP BY c.tenant_id, c.subject_id, c.purpose_id
    """
)
