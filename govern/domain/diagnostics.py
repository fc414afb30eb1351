"""Ingest diagnostics per device: what its requests became, so no ping vanishes in silence.

The protocols of most tracking apps give the app no answer per ping, and some apps delete a
point whatever the answer. What the app cannot be told, an admin can see here: counts over
the last 24 hours, the last refusals with their reason and field (never a coordinate or a
value), and a flag on a device whose last requests all stored nothing.

Recording costs one statement per request (govern.sql.diagnostics.RECORD), in the request's
transaction: the counts commit together with the pings, or not at all.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections import Counter
from dataclasses import dataclass, field

from prometheus_client import Counter as MetricCounter
from sqlalchemy.orm import Session

from govern import jsontext
from govern.sql import diagnostics as sql

# A device is flagged when this many of its requests in a row stored nothing and refused
# something (or were refused whole).
REFUSED_STREAK_FLAG = 5
WINDOW = dt.timedelta(hours=24)
_PER_REQUEST = sql.REFUSALS_KEPT  # refusal entries one request may add

INGEST_REQUESTS = MetricCounter(
    "govern_ingest_requests_total", "Ingest requests by client format and outcome",
    ["format", "outcome"])
REJECTED_FIELDS = MetricCounter(
    "govern_pings_rejected_by_field_total", "Rejected pings by the field at fault", ["field"])
REFUSED_REQUESTS = MetricCounter(
    "govern_ingest_refused_total", "Whole ingest requests refused, by error code",
    ["format", "code"])


@dataclass
class RequestOutcome:
    """What became of one ingest request, as counted (no coordinates, no values)."""

    source: str
    accepted: int = 0
    duplicates: int = 0
    ignored: int = 0
    server_time: int = 0
    dropped: Counter = field(default_factory=Counter)
    rejected: Counter = field(default_factory=Counter)  # by field
    refused: Counter = field(default_factory=Counter)  # whole request, by error code
    refusals: list[dict] = field(default_factory=list)

    @property
    def streak(self) -> str:
        """'reset' when it stored (or had stored) a ping, 'grow' when it only refused,
        'keep' when it carried nothing to store (an OwnTracks lwt, an empty body)."""
        if self.accepted or self.duplicates:
            return "reset"
        if self.dropped or self.rejected or self.refused:
            return "grow"
        return "keep"


def outcome_of(source: str, accepted: int, duplicates: int, ignored: int, server_time: int,
               dropped: Counter, rejected: list[dict], now: dt.datetime) -> RequestOutcome:
    """Summarise a judged batch: counts, and refusal entries grouped by (kind, reason, field)."""
    out = RequestOutcome(source, accepted, duplicates, ignored, server_time, Counter(dropped))
    grouped: Counter = Counter()
    for item in rejected:
        for name, messages in item["errors"].items():
            out.rejected[name] += 1
            grouped["rejected", messages[0] if messages else "invalid", name] += 1
    for reason, n in dropped.items():
        grouped["dropped", reason, None] += n
    at = now.isoformat()
    out.refusals = [{"at": at, "format": source, "kind": kind, "reason": reason,
                     "field": name, "count": n}
                    for (kind, reason, name), n in grouped.most_common(_PER_REQUEST)]
    return out


def refused_request(source: str, code: str, message: str, fields: list[str] | None,
                    now: dt.datetime) -> RequestOutcome:
    """A request refused as a whole (4xx): nothing in it was judged."""
    out = RequestOutcome(source)
    out.refused[code] += 1
    out.refusals = [{"at": now.isoformat(), "format": source, "kind": "refused",
                     "reason": message, "field": ",".join(fields) if fields else None,
                     "count": 1}]
    return out


def record(session: Session, tenant_id: uuid.UUID, device_id: uuid.UUID,
           outcome: RequestOutcome, now: dt.datetime) -> None:
    """Count one request, in the caller's transaction (one statement)."""
    session.execute(sql.RECORD, record_params(tenant_id, device_id, outcome, now))
    count_metrics(outcome)


def record_params(tenant_id: uuid.UUID, device_id: uuid.UUID, outcome: RequestOutcome,
                  now: dt.datetime) -> dict:
    """The parameters of sql.RECORD for one request's outcome."""
    return {
        "tenant_id": tenant_id, "device_id": device_id, "now": now,
        "accepted": outcome.accepted, "duplicates": outcome.duplicates,
        "ignored": outcome.ignored, "server_time": outcome.server_time,
        "dropped": jsontext.dumps(outcome.dropped), "rejected": jsontext.dumps(outcome.rejected),
        "refused": jsontext.dumps(outcome.refused), "refusals": jsontext.dumps(outcome.refusals),
        "accepted_at": now if outcome.accepted else None, "streak": outcome.streak}


def count_metrics(outcome: RequestOutcome) -> None:
    """Prometheus series by reason, never by device (a label per device would not scale
    and would name devices to whoever scrapes the metrics)."""
    if outcome.refused:
        label = "refused"
    elif outcome.accepted or outcome.duplicates:
        label = "stored"
    elif outcome.dropped or outcome.rejected:
        label = "nothing_stored"
    else:
        label = "empty"
    INGEST_REQUESTS.labels(outcome.source, label).inc()
    for name, n in outcome.rejected.items():
        REJECTED_FIELDS.labels(name).inc(n)
    for code, n in outcome.refused.items():
        REFUSED_REQUESTS.labels(outcome.source, code).inc(n)


def device_ingest(session: Session, device_id: uuid.UUID, now: dt.datetime) -> dict:
    """The device's diagnostics at `now`: the last 24 clock hours (the current hour and the
    23 before it), its last accepted ping and its last refusals."""
    since = now.astimezone(dt.UTC).replace(minute=0, second=0, microsecond=0) - (
        WINDOW - dt.timedelta(hours=1))
    totals = {"requests": 0, "accepted": 0, "duplicates": 0, "ignored": 0, "server_time": 0}
    maps: dict[str, Counter] = {"dropped": Counter(), "rejected": Counter(),
                                "refused": Counter()}
    for row in session.execute(sql.HOURLY, {"tenant_id": session.info.get("tenant_id"),
                                            "device_id": device_id, "since": since,
                                            "now": now}).mappings():
        for key in totals:
            totals[key] += row[key]
        for key, counter in maps.items():
            counter.update(row[key])
    state = session.execute(sql.STATE, {"tenant_id": session.info.get("tenant_id"),
                                          "device_id": device_id}).mappings().one_or_none()
    streak = state["refused_streak"] if state else 0
    return {
        "device_id": device_id, "window_start": since, "now": now, **totals,
        **{key: dict(counter) for key, counter in maps.items()},
        "last_request_at": state["last_request_at"] if state else None,
        "last_accepted_at": state["last_accepted_at"] if state else None,
        "refused_streak": streak, "flagged": streak >= REFUSED_STREAK_FLAG,
        "refusals": state["refusals"] if state else [],
    }


def streaks(session: Session, device_ids: list[uuid.UUID]) -> dict[uuid.UUID, dict]:
    """Per device: its refused streak, whether it is flagged, its last accepted ping."""
    if not device_ids:
        return {}
    rows = session.execute(sql.STREAKS, {"tenant_id": session.info.get("tenant_id"),
                                         "device_ids": [str(d) for d in device_ids]})
    return {r.device_id: {"refused_streak": r.refused_streak,
                          "flagged": r.refused_streak >= REFUSED_STREAK_FLAG,
                          "last_accepted_at": r.last_accepted_at} for r in rows}
