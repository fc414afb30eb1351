"""The empirical advantage of an attacker against DP mode stays within its stated bound
(issue 16), and exceeds it against a weakened mechanism, so the test can fail.

Two neighbouring datasets, D without and D' with one target person-day. The attacker sees
one answer of the heatmap's mechanism (`govern.privacy.dp.Plan.answer`, what
`govern.domain.release.private` runs) and decides by an event S on it. (epsilon, delta)-DP
per person-day promises P[S | D'] <= e^epsilon P[S | D] + delta, and the same the other way.
Each probability is estimated over TRIALS answers; Hoeffding's bound at ALPHA makes the
check wrong with probability at most 4 * ALPHA per event, so it does not flake.

The bounding's sampling is seeded (random.Random); OpenDP's noise comes from the system's
randomness, which is what the confidence bounds are for.
"""

from __future__ import annotations

import math
import random

import pytest

from govern.privacy import dp

EPS = 1.0
TRIALS = 1500
ALPHA = 1e-9
CROWD = 200  # person-days in cell A, 100 pings each
TARGET_PINGS = 5000  # a phone stuck pinging: what one person-day could pour into a cell


def _data(with_target: bool) -> list[dp.Contribution]:
    rows = [dp.Contribution(f"s{i}", "monday", "A", {"pings": 100}) for i in range(CROWD)]
    if with_target:
        rows += [dp.Contribution("target", "monday", cell, {"pings": TARGET_PINGS})
                 for cell in ("A", "B", "C", "D")]
    return rows


def _rate(event, with_target: bool, weak: bool, seed: int) -> float:
    plan = dp.Plan.of(dp.BOUNDS["heatmap"], EPS)
    rng = random.Random(seed)
    data = _data(with_target)
    hits = 0
    for _ in range(TRIALS):
        answer, _ = plan.answer(data, ("pings",), enforce_bounds=not weak,
                                private_selection=not weak, rng=rng)
        hits += bool(event(answer))
    return hits / TRIALS


def _margin() -> float:
    return math.sqrt(math.log(2 / ALPHA) / (2 * TRIALS))


# S1: A's noisy pings are high (one in ten answers without the target, by the noise's
# scale); S2: the target's other cell B appears at all.
PLAN = dp.Plan.of(dp.BOUNDS["heatmap"], EPS)
HIGH = CROWD * 100 + PLAN.scales["pings"] * math.log(5)
EVENTS = {
    "pings_high": lambda a: "A" in a and a["A"]["pings"] >= HIGH,
    "b_appears": lambda a: "B" in a,
}


@pytest.mark.parametrize("event", sorted(EVENTS))
def test_the_advantage_stays_within_epsilon_and_delta(event):
    eps, delta = PLAN.epsilon, PLAN.delta
    assert eps <= EPS + 1e-9 and delta <= dp.DELTA_PER_QUERY
    p_without = _rate(EVENTS[event], False, False, 1)
    p_with = _rate(EVENTS[event], True, False, 2)
    m = _margin()
    # what the data could show at worst, each way
    assert max(p_with - m, 0) <= math.exp(eps) * min(p_without + m, 1) + delta
    assert max(p_without - m, 0) <= math.exp(eps) * min(p_with + m, 1) + delta


@pytest.mark.parametrize("event", sorted(EVENTS))
def test_a_weakened_mechanism_exceeds_the_bound(event):
    """No contribution bound, every group with data shown (the release before issue 16):
    the target's pings move A by far more than the noise covers, and its cell B appears."""
    p_without = _rate(EVENTS[event], False, True, 3)
    p_with = _rate(EVENTS[event], True, True, 4)
    m = _margin()
    assert max(p_with - m, 0) > math.exp(PLAN.epsilon) * min(p_without + m, 1) + PLAN.delta
