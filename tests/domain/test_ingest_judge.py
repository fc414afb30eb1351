"""judge() folds the consent ledger once per batch; it must answer what the per-ping rules in
govern.policy (purposes_allowed, the cut-offs of govern.policy.cutoffs, ...) answer, ping by
ping."""

import datetime as dt
import random
import uuid
from collections import Counter

import pytest

from govern.domain.ingest import Context, IngestResult, PurposeInfo, SubjectInfo, judge
from govern.domain.policy import DEFAULT_POLICY
from govern.ingest.validate import Ping
from govern.policy import cutoffs, door
from govern.policy.consent import ConsentEvent, last_withdrawals, purposes_allowed

NOW = dt.datetime(2026, 11, 20, 12, tzinfo=dt.UTC)


def reference(pings, ctx, now):
    """The rules as plain per-ping functions, in their documented order."""
    by_key = {p.key: p for p in ctx.purposes}
    needs = {p.key: p.requires_consent for p in ctx.purposes}
    out, dropped = [], Counter()
    for index, ping in pings:
        if door.is_from_the_future(ping.t, now):
            reason = "future"
        elif ctx.subject.collection_blocked:
            reason = "subject_blocked"
        elif door.is_too_inaccurate(ping.acc, ctx.policy["min_accuracy_m"]):
            reason = "inaccurate"
        else:
            # consented when recorded and not withdrawn since; then only those whose window
            # is open
            withdrawn = last_withdrawals(ctx.consents, now)
            serving = [by_key[k] for k in purposes_allowed(needs, ctx.consents, ping.t)
                       if ping.t > cutoffs.latest(withdrawn.get(k))]
            open_ = [p for p in serving
                     if ping.t > cutoffs.window_start(p.retention_days, p.window_floor, now)]
            if not serving:
                reason = "no_consent"
            elif not open_:
                reason = "expired"
            elif not ctx.duty.at(ping.t):
                reason = "off_duty"
            else:
                mask = 0
                for p in open_:
                    mask |= 1 << p.bit
                out.append((index, mask, min(p.precision_m for p in open_)))
                continue
        dropped[reason] += 1
    return out, dropped


@pytest.mark.parametrize("seed", range(40))
def test_judge_matches_the_per_ping_rules(seed):
    rng = random.Random(seed)
    keys = ["nav", "dispatch", "analytics", "hr"]
    purposes = [PurposeInfo(k, bit, rng.random() < 0.8, rng.choice([10, 100, 250]),
                            rng.choice([1, 7, 30, 365]), rng.random() < 0.5,
                            rng.choice([None, NOW - dt.timedelta(days=rng.randrange(0, 40))]))
                for bit, k in enumerate(keys) if rng.random() < 0.9]
    start = NOW - dt.timedelta(days=40)

    def instant():  # coarse, so that events and pings often share an instant
        return start + dt.timedelta(hours=rng.randrange(0, 41 * 24))

    consents = [ConsentEvent(rng.choice(keys + ["archived"]), rng.choice(["granted", "withdrawn"]),
                             instant(), seq) for seq in range(rng.randrange(0, 12))]
    duty = door.duty_timeline(sorted((instant(), rng.random() < 0.5)
                                     for _ in range(rng.randrange(0, 4))))
    ctx = Context(SubjectInfo(uuid.uuid4(), None, None, rng.random() < 0.05),
                  dict(DEFAULT_POLICY), purposes, consents, duty, zones_apply=False)
    pings = [(n, Ping(None, instant() if rng.random() < 0.97 else NOW + dt.timedelta(hours=1),
                      52.5, 13.4, acc=rng.choice([None, 5.0, 600.0])))
             for n in range(200)]
    result = IngestResult()
    got = [(a.index, a.mask, a.precision_m) for a in judge(pings, ctx, NOW, result)]
    want, dropped = reference(pings, ctx, NOW)
    assert got == want
    assert result.dropped == dropped
