"""Native ping validation: every error a client can get, and the conversions it relies on."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone

import pytest

from govern.ingest.validate import Flawed, Ping, parse_time, validate_ping

# A full native ping as a field app would post it (JSON, as in the API notes).
FULL = json.loads(
    """
    {"id": "a7f3c2e1-0001", "t": "2024-05-01T10:15:30.250+02:00",
     "lat": 52.520008, "lon": 13.404954, "acc": 8.5, "alt": 41, "speed": 1.4,
     "heading": 270, "battery": 87, "activity": "walking", "app_version": "3.2.1"}
    """
)


def minimal(**changes):
    ping = {"t": "2024-05-01T08:00:00Z", "lat": 52.5, "lon": 13.4}
    ping.update(changes)
    return ping


def errors_of(raw) -> dict[str, list[str]]:
    ping, errors = validate_ping(raw)
    assert ping is None
    return errors


def test_full_ping_is_converted_to_utc_floats():
    ping, errors = validate_ping(FULL)
    assert errors == {}
    assert ping == Ping(
        client_id="a7f3c2e1-0001",
        t=datetime(2024, 5, 1, 8, 15, 30, 250000, tzinfo=UTC),
        lat=52.520008,
        lon=13.404954,
        acc=8.5,
        alt=41.0,
        speed=1.4,
        heading=270.0,
        battery=87.0,
        activity="walking",
    )
    assert ping.t.tzinfo is UTC
    assert type(ping.alt) is float and type(ping.heading) is float


def test_minimal_ping_leaves_optional_fields_none():
    ping, errors = validate_ping(minimal())
    assert errors == {}
    assert ping.client_id is None
    assert (ping.acc, ping.alt, ping.speed, ping.heading, ping.battery, ping.activity) == (
        None,
        None,
        None,
        None,
        None,
        None,
    )


def test_nulls_are_treated_as_absent():
    raw = minimal(id=None, acc=None, alt=None, speed=None, heading=None, battery=None)
    raw["activity"] = None
    ping, errors = validate_ping(raw)
    assert errors == {} and ping.acc is None and ping.client_id is None


def test_unknown_keys_are_ignored():
    ping, errors = validate_ping(minimal(foo="bar", extras={"route": 7}))
    assert errors == {} and ping is not None


@pytest.mark.parametrize("raw", [[], "ping", 42, None, True])
def test_non_object_is_rejected(raw):
    assert errors_of(raw) == {"_schema": ["must be an object"]}


# --- id ---


def test_integer_id_becomes_a_string():
    ping, _ = validate_ping(minimal(id=1234))
    assert ping.client_id == "1234"


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("", "must be 1 to 100 characters"),
        ("x" * 101, "must be 1 to 100 characters"),
        (10**100, "must be 1 to 100 characters"),
        (12.5, "must be a string or an integer"),
        (True, "must be a string or an integer"),
        (["a"], "must be a string or an integer"),
    ],
)
def test_bad_id(value, message):
    assert errors_of(minimal(id=value)) == {"id": [message]}


def test_id_of_100_characters_is_accepted():
    ping, _ = validate_ping(minimal(id="x" * 100))
    assert ping.client_id == "x" * 100


# --- t ---


def test_missing_time():
    raw = minimal()
    del raw["t"]
    assert errors_of(raw) == {"t": ["is required"]}
    assert errors_of(minimal(t=None)) == {"t": ["is required"]}


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("2024-05-01T10:00:00", "must include a UTC offset"),
        ("2024-05-01", "must include a UTC offset"),
        ("yesterday", "must be an ISO-8601 timestamp"),
        ("2024-13-01T00:00:00Z", "must be an ISO-8601 timestamp"),
        ("1999-12-31T23:59:59Z", "must be between the years 2000 and 2100"),
        ("2101-01-01T00:00:00Z", "must be between the years 2000 and 2100"),
        ("2000-01-01T00:30:00+01:00", "must be between the years 2000 and 2100"),
        ("0001-01-01T00:00:00+01:00", "must be between the years 2000 and 2100"),
        ("9999-12-31T23:59:59-01:00", "must be between the years 2000 and 2100"),
        (1714550400, "must be an ISO-8601 string"),
        (True, "must be an ISO-8601 string"),
    ],
)
def test_bad_time(value, message):
    assert errors_of(minimal(t=value)) == {"t": [message]}


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2024-05-01T08:00:00Z", datetime(2024, 5, 1, 8, tzinfo=UTC)),
        ("2024-05-01T08:00:00+00:00", datetime(2024, 5, 1, 8, tzinfo=UTC)),
        ("2024-05-01T01:00:00-07:00", datetime(2024, 5, 1, 8, tzinfo=UTC)),
        ("2024-05-01T01:00:00-0700", datetime(2024, 5, 1, 8, tzinfo=UTC)),
        ("2024-05-01T08:00:00.123Z", datetime(2024, 5, 1, 8, 0, 0, 123000, tzinfo=UTC)),
        ("2000-01-01T00:00:00Z", datetime(2000, 1, 1, tzinfo=UTC)),
        ("2100-12-31T23:59:59Z", datetime(2100, 12, 31, 23, 59, 59, tzinfo=UTC)),
    ],
)
def test_time_is_converted_to_utc(value, expected):
    ping, errors = validate_ping(minimal(t=value))
    assert errors == {}
    assert ping.t == expected and ping.t.tzinfo is UTC


# --- numbers ---


@pytest.mark.parametrize("key", ["lat", "lon"])
def test_missing_coordinate(key):
    raw = minimal()
    del raw[key]
    assert errors_of(raw) == {key: ["is required"]}


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("lat", 90.000001, "must be between -90 and 90"),
        ("lat", -91, "must be between -90 and 90"),
        ("lon", 180.5, "must be between -180 and 180"),
        ("lon", -181, "must be between -180 and 180"),
        ("lat", "52.5", "must be a number"),
        ("lon", True, "must be a number"),
        ("lat", float("nan"), "must be a finite number"),
        ("lon", float("inf"), "must be a finite number"),
        ("lat", [52.5], "must be a number"),
        ("acc", -1, "must be between 0 and 100000"),
        ("acc", 100_001, "must be between 0 and 100000"),
        ("alt", -1000.5, "must be between -1000 and 100000"),
        ("alt", 100_000.1, "must be between -1000 and 100000"),
        ("speed", -0.1, "must be between 0 and 1000"),
        ("speed", 1001, "must be between 0 and 1000"),
        ("heading", -1, "must be between 0 and 360"),
        ("heading", 360.5, "must be between 0 and 360"),
        ("battery", 101, "must be between 0 and 100"),
        ("battery", -1, "must be between 0 and 100"),
        ("battery", "87", "must be a number"),
        ("speed", False, "must be a number"),
        ("acc", float("-inf"), "must be a finite number"),
        ("heading", {"deg": 90}, "must be a number"),
    ],
)
def test_bad_number(key, value, message):
    assert errors_of(minimal(**{key: value})) == {key: [message]}


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("lat", -90),
        ("lat", 90),
        ("lon", -180),
        ("lon", 180),
        ("acc", 0),
        ("acc", 100_000),
        ("alt", -1000),
        ("alt", 100_000),
        ("speed", 0),
        ("speed", 1000),
        ("heading", 0),
        ("heading", 360),
        ("battery", 0),
        ("battery", 100),
    ],
)
def test_range_bounds_are_inclusive(key, value):
    ping, errors = validate_ping(minimal(**{key: value}))
    assert errors == {}
    assert getattr(ping, key) == value


# --- activity ---


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (7, "must be a string"),
        (["walking"], "must be a string"),
        ("x" * 41, "must be at most 40 characters"),
    ],
)
def test_bad_activity(value, message):
    assert errors_of(minimal(activity=value)) == {"activity": [message]}


def test_all_errors_are_reported_together():
    raw = {"id": "", "lat": 91, "lon": "13.4", "speed": -3, "activity": 1}
    assert errors_of(raw) == {
        "id": ["must be 1 to 100 characters"],
        "t": ["is required"],
        "lat": ["must be between -90 and 90"],
        "lon": ["must be a number"],
        "speed": ["must be between 0 and 1000"],
        "activity": ["must be a string"],
    }


# --- converter results ---


def test_aware_datetime_from_a_converter_is_accepted():
    t = datetime(2024, 5, 1, 10, tzinfo=timezone(timedelta(hours=2)))
    ping, errors = validate_ping(minimal(t=t))
    assert errors == {} and ping.t == datetime(2024, 5, 1, 8, tzinfo=UTC)


def test_naive_datetime_is_rejected():
    assert errors_of(minimal(t=datetime(2024, 5, 1, 10))) == {"t": ["must include a UTC offset"]}


def test_flawed_without_fields_reports_only_its_errors():
    assert errors_of(Flawed({}, {"coords": ["is required"]})) == {"coords": ["is required"]}


def test_flawed_with_fields_reports_conversion_and_validation_errors():
    raw = Flawed({"lat": 95, "lon": 13.4}, {"t": ["must be an ISO-8601 timestamp"]})
    assert errors_of(raw) == {
        "t": ["must be an ISO-8601 timestamp"],
        "lat": ["must be between -90 and 90"],
    }


def test_flawed_is_rejected_even_when_its_fields_are_valid():
    raw = Flawed(minimal(), {"battery": ["must be an object"]})
    assert errors_of(raw) == {"battery": ["must be an object"]}


# --- parse_time ---


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (1714550400, datetime(2024, 5, 1, 8, tzinfo=UTC)),
        (1714550400.5, datetime(2024, 5, 1, 8, 0, 0, 500000, tzinfo=UTC)),
        ("1714550400", datetime(2024, 5, 1, 8, tzinfo=UTC)),
        (1714550400123, datetime(2024, 5, 1, 8, 0, 0, 123000, tzinfo=UTC)),
        ("1714550400123", datetime(2024, 5, 1, 8, 0, 0, 123000, tzinfo=UTC)),
        ("2024-05-01T10:00:00+02:00", datetime(2024, 5, 1, 8, tzinfo=UTC)),
        ("2024-05-01T08:00:00Z", datetime(2024, 5, 1, 8, tzinfo=UTC)),
        (datetime(2024, 5, 1, 8, tzinfo=UTC), datetime(2024, 5, 1, 8, tzinfo=UTC)),
    ],
)
def test_parse_time_accepts_epochs_and_iso(value, expected):
    parsed = parse_time(value)
    assert parsed == expected and parsed.tzinfo is UTC


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (946684799, "must be between the years 2000 and 2100"),  # 1999-12-31T23:59:59Z
        (4133980800, "must be between the years 2000 and 2100"),  # 2101-01-01, as seconds
        (99_999_999_999, "must be between the years 2000 and 2100"),  # below the ms threshold
        (4133980800000, "must be between the years 2000 and 2100"),  # 2101-01-01, as ms
        (-5, "must be between the years 2000 and 2100"),
        ("9" * 400, "must be between the years 2000 and 2100"),
        ("1999-12-31T23:59:59Z", "must be between the years 2000 and 2100"),
        ("2024-05-01 10:00:00", "must include a UTC offset"),
        (datetime(2024, 5, 1), "must include a UTC offset"),
        ("soon", "must be an ISO-8601 timestamp"),
        ("-1714550400", "must be an ISO-8601 timestamp"),
        (True, "must be an ISO-8601 timestamp or epoch seconds or milliseconds"),
        (float("nan"), "must be an ISO-8601 timestamp or epoch seconds or milliseconds"),
        (None, "must be an ISO-8601 timestamp or epoch seconds or milliseconds"),
        ([1714550400], "must be an ISO-8601 timestamp or epoch seconds or milliseconds"),
    ],
)
def test_parse_time_rejects(value, message):
    with pytest.raises(ValueError) as caught:
        parse_time(value)
    assert str(caught.value) == message


def test_epoch_boundaries():
    assert parse_time(946684800) == datetime(2000, 1, 1, tzinfo=UTC)
    assert parse_time(4133980799) == datetime(2100, 12, 31, 23, 59, 59, tzinfo=UTC)
