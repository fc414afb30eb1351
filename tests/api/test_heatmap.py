"""Aggregate heatmap: rollups only, k floor, aligned periods, differential privacy and the
differencing attack."""

import datetime as dt

import pytest

from tests.tracking import ping

DAY = dt.timedelta(days=1)
AGG = {"key": "analytics", "title": "Analytics", "precision_m": 100, "retention_days": 60,
       "aggregate_use": True}
SPOT = (52.5200, 13.4050)
ELSEWHERE = (48.1374, 11.5755)


_TODAY: dict = {}


@pytest.fixture(autouse=True)
def _one_today_per_test():
    """The test's days are counted from one date, read once when it starts: read at each
    call, a UTC midnight between planting and asking moved the asked day off the planted
    one (make test-instants, utc-midnight: an empty heatmap)."""
    _TODAY["date"] = dt.datetime.now(dt.UTC).date()


def midnight(days_ago: int) -> dt.datetime:
    today = _TODAY["date"]
    return dt.datetime.combine(today - dt.timedelta(days=days_ago), dt.time(0), dt.UTC)


def z(t: dt.datetime) -> str:
    return t.isoformat().replace("+00:00", "Z")


@pytest.fixture
def crowd(tenant, make_tracked):
    """Subjects who post under an aggregate purpose; returns a function to add one."""
    tenant.patch("/v1/policy", {"k_min_subjects": 3, "release_delay_hours": 0})
    n = {"i": 0}

    def add(place, when: list[dt.datetime]):
        n["i"] += 1
        t = make_tracked(tenant, purposes=[AGG] if n["i"] == 1 else [], consent=("analytics",),
                         consent_at=dt.datetime.now(dt.UTC) - 40 * DAY,
                         subject={"external_ref": f"w{n['i']}"}, identifier=None)
        body = t.pings([ping(lat=place[0], lon=place[1], t=w.isoformat(), id=str(i))
                        for i, w in enumerate(when)]).get_json()
        assert body["accepted"] == len(when), body
        return t

    return add


def heatmap(tenant, t_from, t_to, role="analyst", **params):
    return tenant.get("/v1/reports/heatmap", token=tenant.token_for(role),
                      query_string={"from": z(t_from), "to": z(t_to), **params})


def test_cells_under_k_are_suppressed_and_counted(tenant, crowd):
    noon = midnight(2) + dt.timedelta(hours=12)
    for _ in range(3):
        crowd(SPOT, [noon])
    crowd(ELSEWHERE, [noon])
    resp = heatmap(tenant, midnight(2), midnight(1), resolution=8)
    assert resp.status_code == 200, resp.get_json()
    body = resp.get_json()
    assert [f["properties"]["subjects"] for f in body["features"]] == [3]
    assert body["properties"]["suppressed"] == 1
    assert body["properties"]["k_min_subjects"] == 3
    assert body["features"][0]["geometry"]["type"] == "Polygon"


def test_no_released_cell_rests_on_fewer_than_k(tenant, crowd):
    noon = midnight(2) + dt.timedelta(hours=12)
    places = [SPOT, SPOT, SPOT, SPOT, ELSEWHERE, ELSEWHERE, (40.0, -3.7)]
    for place in places:
        crowd(place, [noon])
    for res in (5, 7, 9):
        body = heatmap(tenant, midnight(2), midnight(1), resolution=res).get_json()
        assert all(f["properties"]["subjects"] >= 3 for f in body["features"])
        assert len(body["features"]) + body["properties"]["suppressed"] == 3


def test_reports_come_from_rollups_and_outlive_raw_pings(tenant, crowd, superuser):
    noon = midnight(2) + dt.timedelta(hours=12)
    for _ in range(3):
        crowd(SPOT, [noon, noon + dt.timedelta(minutes=5)])
    before = heatmap(tenant, midnight(2), midnight(1)).get_json()["features"]
    superuser.execute("DELETE FROM pings")
    after = heatmap(tenant, midnight(2), midnight(1)).get_json()["features"]
    assert before == after and after[0]["properties"]["pings"] == 6


def test_csv_for_spreadsheets(tenant, crowd):
    noon = midnight(2) + dt.timedelta(hours=12)
    for _ in range(3):
        crowd(SPOT, [noon])
    resp = heatmap(tenant, midnight(2), midnight(1), format="csv")
    assert resp.mimetype == "text/csv"
    header, row = resp.get_data(as_text=True).strip().splitlines()
    assert header == "cell,lat,lon,pings,subjects"
    assert row.endswith(",3,3")


def test_only_analysts_owners_and_admins(tenant):
    for role, status in (("dispatcher", 403), ("auditor", 403), ("owner", 200)):
        assert heatmap(tenant, midnight(2), midnight(1), role=role).status_code == status


def test_without_dp_only_aligned_periods_are_released(tenant):
    tenant.patch("/v1/policy", {"release_delay_hours": 0})  # last week may have just ended
    resp = heatmap(tenant, midnight(2), midnight(1) + dt.timedelta(hours=1))
    assert resp.status_code == 422
    assert resp.get_json()["error"]["code"] == "unaligned_period"
    monday = midnight(0) - dt.timedelta(days=midnight(0).weekday() + 7)
    assert heatmap(tenant, monday, monday + 7 * DAY).status_code == 200
    assert heatmap(tenant, monday + DAY, monday + 8 * DAY).status_code == 422


def test_a_long_period_cannot_be_differenced_against_its_days(tenant, crowd):
    """A cell with 3 subjects on Monday and a lone subject on Tuesday is suppressed for the
    whole week: else week minus Monday would expose Tuesday's lone visit."""
    monday = midnight(0) - dt.timedelta(days=midnight(0).weekday() + 14)
    for _ in range(3):
        crowd(SPOT, [monday + dt.timedelta(hours=10)])
    crowd(SPOT, [monday + dt.timedelta(days=1, hours=10)])
    assert len(heatmap(tenant, monday, monday + DAY).get_json()["features"]) == 1
    week = heatmap(tenant, monday, monday + 7 * DAY).get_json()
    assert week["features"] == [] and week["properties"]["suppressed"] == 1


def test_dp_charges_each_day_of_data_and_refuses_when_one_is_spent(tenant, crowd):
    tenant.patch("/v1/policy", {"dp_epsilon_per_query": 1.0, "dp_epsilon_per_day": 2.5})
    start = midnight(2)
    ok = heatmap(tenant, start, start + dt.timedelta(hours=25))  # any whole hours
    assert ok.status_code == 200
    props = ok.get_json()["properties"]
    assert props["mode"] == "differential_privacy" and props["epsilon"] == pytest.approx(1.0)
    assert props["budget"]["remaining"] == pytest.approx(1.5)  # each of its two days
    assert props["budget"]["days"] == 2 and props["budget"]["unit"] == "person-day"
    assert 0 < props["delta"] <= 1e-6
    assert heatmap(tenant, start, start + DAY).status_code == 200
    spent = heatmap(tenant, start, start + DAY)  # the first day would reach 3 of 2.5
    assert spent.status_code == 429
    assert spent.get_json()["error"]["code"] == "privacy_budget_spent"
    assert "Retry-After" not in spent.headers  # a day's budget does not renew
    # the second day has 1.5 left: one more answer about it alone
    assert heatmap(tenant, start + DAY, start + 2 * DAY).status_code == 200


def test_dp_refuses_minutes(tenant):
    tenant.patch("/v1/policy", {"dp_epsilon_per_query": 1.0, "dp_epsilon_per_day": 10})
    assert heatmap(tenant, midnight(2), midnight(1) + dt.timedelta(minutes=30)).status_code \
        == 422


def _attack(tenant, day, extra_hour_end, trials):
    """The differencing pair: the day, then the day plus one hour. Guess that someone new
    was in the busiest cell during the extra hour when its count went up."""
    guesses = []
    for _ in range(trials):
        a = heatmap(tenant, day, day + DAY, resolution=8).get_json()
        b = heatmap(tenant, day, extra_hour_end, resolution=8).get_json()
        count = {}
        for name, body in (("a", a), ("b", b)):
            cells = {f["properties"]["cell"]: f["properties"]["subjects"]
                     for f in body["features"]}
            count[name] = max(cells.values(), default=0)
        guesses.append(count["b"] - count["a"] >= 1)
    return guesses


def test_differencing_pair_cannot_isolate_a_planted_lone_subject(make_tenant, make_tracked):
    """Two worlds differ only by one subject's visit in the extra hour. Under DP the pair of
    queries lets an attacker tell them apart barely better than a coin (the bound for
    epsilon 0.25 on the subject count is 56%); without noise they could always."""
    day = midnight(3)
    trials = 40
    accuracy_hits = 0
    for planted in (True, False):
        tenant = make_tenant("planted" if planted else "control")
        tenant.patch("/v1/policy", {"k_min_subjects": 3, "dp_epsilon_per_query": 0.5,
                                    "dp_epsilon_per_day": 100})
        first = True
        for i in range(6 if planted else 5):
            t = make_tracked(tenant, purposes=[AGG] if first else [], consent=("analytics",),
                             consent_at=dt.datetime.now(dt.UTC) - 40 * DAY,
                             subject={"external_ref": f"w{i}"})
            first = False
            when = day + (DAY + dt.timedelta(minutes=20) if i == 5 else dt.timedelta(hours=12))
            assert t.pings([ping(lat=SPOT[0], lon=SPOT[1], t=when.isoformat())]).get_json()[
                "accepted"] == 1
        guesses = _attack(tenant, day, day + DAY + dt.timedelta(hours=1), trials)
        accuracy_hits += sum(guesses) if planted else trials - sum(guesses)
    accuracy = accuracy_hits / (2 * trials)
    assert accuracy < 0.75, accuracy
