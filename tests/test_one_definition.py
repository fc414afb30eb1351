"""Each governance rule has one definition that every path uses (issue 15): a second copy,
fixed in one place and not the other, is how a read came to ignore what another honoured.

- Consent at an instant: in SQL only govern/sql/consent.py reads the ledger's status (every
  statement that needs it embeds its expressions); in Python only govern/policy/consent.py
  folds the ledger (the door uses its step function). The two agree on random ledgers.
- Retention cut-offs: only govern/policy/cutoffs.py turns a number of days into an instant.
"""

from __future__ import annotations

import datetime as dt
import pathlib
import random
import re
import uuid

import pytest
from sqlalchemy import text

from govern.domain import consents as consent_domain
from govern.policy import consent as consent_rule
from govern.sql import consent as consent_sql
from govern.sql import dp as dp_sql
from govern.sql import reads, retention, travel_reports

PACKAGE = pathlib.Path(__file__).resolve().parent.parent / "govern"


def _sources():
    for path in sorted(PACKAGE.rglob("*.py")):
        if "migrations" not in path.parts:
            yield path.relative_to(PACKAGE).as_posix(), path.read_text()


# Files that touch the ledger for another reason than its status: the model, the door's
# load of the ledger (the rule is applied in Python by govern.policy.consent), and the
# rights of access and erasure (a copy of the ledger, its deletion, counts).
LEDGER_NOT_RULE = {"models.py", "sql/pings.py", "domain/rights.py", "sql/rights.py"}


def test_only_the_consent_module_reads_the_ledgers_status_in_sql():
    offenders = [name for name, source in _sources()
                 if "consent_events" in source and name not in LEDGER_NOT_RULE
                 and name != "sql/consent.py"]
    assert offenders == []


def test_the_ledger_loaders_do_not_decide_status():
    for name, source in _sources():
        if name in LEDGER_NOT_RULE:
            assert not re.search(r"ORDER BY \w+\.at DESC|status\s*=\s*'(granted|withdrawn)'",
                                 source), name


def _compiled(statement) -> str:
    return str(statement if isinstance(statement, str) else statement.text)


@pytest.mark.parametrize("name, statement, pieces", [
    ("readable subjects", reads.READABLE_SUBJECTS, ("FROM consent_events ce",
                                                   "FROM consent_events cw")),
    ("DP travel", dp_sql.travel(travel_reports.Shape()), ("FROM consent_events ce",
                                                          "FROM consent_events cw")),
    ("DP heatmap", dp_sql.heatmap_points(travel_reports.Shape()), ("FROM consent_events ce",
                                                                   "FROM consent_events cw")),
    ("travel basis", travel_reports.freeze_travel_basis(travel_reports.Shape()),
     ("FROM consent_events ce", "FROM consent_events cw")),
    ("retention withdrawals", consent_sql.NEW_WITHDRAWALS, ("FROM consent_events cw",)),
    ("retention withdrawn now", retention.WITHDRAWN_PURPOSES, ("FROM consent_events ce",)),
    ("consent state", consent_sql.STATE_AT, ("FROM consent_events ce",)),
])
def test_every_path_embeds_the_one_consent_expression(name, statement, pieces):
    sql = _compiled(statement)
    for piece in pieces:
        assert piece in sql, name


def test_only_the_cutoffs_module_turns_retention_days_into_an_instant():
    pattern = re.compile(r"timedelta\(days=[^)]*retention_days|86400[^\n]*retention_days|"
                         r"retention_days[^\n]*\* *86400")
    offenders = [name for name, source in _sources()
                 if pattern.search(source) and name != "policy/cutoffs.py"]
    assert offenders == []


def test_the_door_and_the_sql_agree_on_random_ledgers(tenant, sessions):
    """The Python fold (the door's) and the SQL expressions (every other path's) give the
    same status and latest withdrawal at every instant of random ledgers, with events that
    share an instant (the later seq wins)."""
    from govern.db import tenant_session

    rng = random.Random(15)
    t0 = dt.datetime(2026, 3, 2, 9, tzinfo=dt.UTC)
    purposes = {key: uuid.UUID(tenant.purpose(key)["purpose_id"]) for key in ("nav", "hr")}
    subject_id = uuid.UUID(tenant.subject("ledger")["subject_id"])
    events = []
    with tenant_session(sessions, tenant.tenant_id) as s:
        for _ in range(30):
            key, status = rng.choice(list(purposes)), rng.choice(["granted", "withdrawn"])
            event = consent_domain.record_consent(
                s, tenant.tenant_id, subject_id, purpose_key=key, status=status,
                at=t0 + dt.timedelta(hours=rng.randrange(0, 12)), policy_version="v1",
                evidence={}, source="admin", actor="test", now=t0 + dt.timedelta(hours=13))
            events.append(consent_rule.ConsentEvent(key, status, event.at, event.seq))
    assert len({e.at for e in events}) < len(events)  # instants are shared
    with tenant_session(sessions, tenant.tenant_id) as s:
        for hour in range(-1, 14):
            at = t0 + dt.timedelta(hours=hour)
            by_id = {row.purpose_id: row.status
                     for row in s.execute(consent_sql.STATE_AT,
                                          {"subject_id": subject_id, "at": at})}
            in_sql = {key: by_id[pid] for key, pid in purposes.items() if pid in by_id}
            assert in_sql == consent_rule.consent_state_at(events, at), at
            withdrawn = consent_rule.last_withdrawals(events, at)
            for key, pid in purposes.items():
                got = s.execute(text(
                    f"SELECT {consent_sql.withdrawn_until(':t', ':s', ':p', ':at')}"),
                    {"t": tenant.tenant_id, "s": subject_id, "p": pid, "at": at}).scalar()
                assert got == withdrawn.get(key), (key, at)
