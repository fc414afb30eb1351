"""The apps' quirks, converted without a database: unknown sentinels become null, a missing
time becomes the receipt time, no fix and non-location items are Skipped with a reason."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from govern.ingest.formats import (
    from_osmand,
    from_osmand_json,
    from_overland,
    from_owntracks,
    from_transistor,
)
from govern.ingest.validate import RECEIVED, Skipped, validate_ping

RECEIVED_AT = datetime(2026, 11, 10, 9, 30, tzinfo=UTC)


def valid(raw):
    ping, errors = validate_ping(raw, RECEIVED_AT)
    assert errors == {}, errors
    return ping


@pytest.mark.parametrize("vel", [-1, -3, -1.0])
def test_owntracks_negative_velocity_and_course_are_unknown(vel):
    (raw,), _ = from_owntracks({"_type": "location", "lat": 1, "lon": 2, "tst": 1714550400,
                                "vel": vel, "cog": -1, "batt": -1, "acc": 0})
    ping = valid(raw)
    assert (ping.speed, ping.heading, ping.battery, ping.acc) == (None, None, None, None)


def test_owntracks_encrypted_is_a_dropped_item():
    (item,), ignored = from_owntracks({"_type": "encrypted", "data": "eA=="})
    assert ignored == 0 and type(item) is Skipped and item.dropped
    assert item.reason == "encrypted"


@pytest.mark.parametrize("params", [
    {"id": "d1", "cell": "257,02,16,2224"},
    {"id": "d1", "wifi": "00-14-22-01-23-45,-80", "timestamp": "1714550400"},
    {"id": "d1", "lat": "1", "lon": "2", "valid": "false", "timestamp": "1714550400"},
    {"id": "d1", "lat": "1", "lon": "2", "valid": "0", "timestamp": "1714550400"},
])
def test_osmand_without_a_fix_is_skipped(params):
    identifier, item = from_osmand(params)
    assert identifier == "d1" and type(item) is Skipped
    assert (item.reason, item.dropped) == ("no_fix", True)


def test_osmand_only_one_coordinate_is_still_an_error():
    _, raw = from_osmand({"id": "d1", "lat": "1", "timestamp": "1714550400"})
    ping, errors = validate_ping(raw, RECEIVED_AT)
    assert ping is None and errors == {"lon": ["is required"]}


def test_osmand_unknowns_and_alternative_names():
    _, raw = from_osmand({"deviceid": "d1", "location": "60.0,30.0", "speed": "-1.0",
                          "heading": "-1.0", "hacc": "0", "batt": "-1", "hdop": "6.0",
                          "vacc": "3", "charge": "true"})
    ping = valid(raw)
    assert (ping.lat, ping.lon) == (60.0, 30.0)
    assert (ping.speed, ping.heading, ping.acc, ping.battery) == (None, None, None, None)
    assert ping.t == RECEIVED_AT and ping.time_source == "server"
    _, raw = from_osmand({"id": "d1", "lat": "1", "lon": "2", "hacc": "7.5",
                          "timestamp": "1714550400"})
    ping = valid(raw)
    assert ping.acc == 7.5 and ping.time_source == "device"


def test_osmand_flawed_without_time_reports_only_the_real_fault():
    _, raw = from_osmand({"id": "d1", "lat": "north", "lon": "2"})
    ping, errors = validate_ping(raw, RECEIVED_AT)
    assert ping is None and errors == {"lat": ["must be a number"]}


def test_received_cannot_come_from_json():
    # the marker is an object of its own: a string spelling it is just a bad time
    ping, errors = validate_ping({"t": "RECEIVED", "lat": 1, "lon": 2}, RECEIVED_AT)
    assert ping is None and "t" in errors
    assert valid({"t": RECEIVED, "lat": 1, "lon": 2}).time_source == "server"


def test_traccar_json_location_without_coords_is_no_fix():
    _, items = from_osmand_json({"device_id": "d1", "location": [
        {"timestamp": "2025-06-15T13:45:12.862Z", "event": "heartbeat"},
        {"timestamp": "2025-06-15T13:45:12.862Z",
         "coords": {"latitude": 1, "longitude": 2, "accuracy": 0, "speed": -1, "heading": -1},
         "battery": {"level": -1}}]})
    assert type(items[0]) is Skipped and items[0].reason == "no_fix"
    ping = valid(items[1])
    assert (ping.acc, ping.speed, ping.heading, ping.battery) == (None, None, None, None)


def test_transistor_zero_accuracy_is_unknown():
    (raw,) = from_transistor({"location": {"timestamp": "2025-06-15T13:45:12.862Z",
                                           "coords": {"latitude": 1, "longitude": 2,
                                                      "accuracy": 0}}})
    assert valid(raw).acc is None


@pytest.mark.parametrize(("props", "reason"), [
    ({"action": "visit", "arrival_date": None}, "action"),
    ({"action": "paused_location_updates"}, "action"),
    ({"type": "trip", "mode": "walk"}, "trip"),
])
def test_overland_non_location_features_are_ignored(props, reason):
    feature = {"type": "Feature", "properties": {"timestamp": "2015-10-01T08:00:00-0700",
                                                 **props}}
    if reason != "action" or "arrival_date" in props:
        feature["geometry"] = {"type": "Point", "coordinates": [-122.03, 37.33]}
    (item,) = from_overland({"locations": [feature]})
    assert type(item) is Skipped and not item.dropped and item.reason == reason


def test_overland_offset_without_colon_and_unknowns():
    (raw,) = from_overland({"locations": [{"type": "Feature", "geometry": {
        "type": "Point", "coordinates": [-122.03, 37.33]}, "properties": {
        "timestamp": "2015-10-01T08:00:00-0700", "speed": -1, "course": -1,
        "horizontal_accuracy": 0, "battery_level": -1}}]})
    ping = valid(raw)
    assert ping.t == datetime(2015, 10, 1, 15, tzinfo=UTC)
    assert (ping.speed, ping.heading, ping.acc, ping.battery) == (None, None, None, None)
