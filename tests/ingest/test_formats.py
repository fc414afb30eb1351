"""Client formats: real payload shapes of each app, converted and then validated."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from govern.ingest.formats import (
    KMH,
    KNOT,
    FormatError,
    from_osmand,
    from_osmand_json,
    from_overland,
    from_owntracks,
    from_transistor,
)
from govern.ingest.validate import Skipped, validate_ping


def valid(raw):
    ping, errors = validate_ping(raw)
    assert errors == {}, errors
    return ping


def rejected(raw) -> dict[str, list[str]]:
    ping, errors = validate_ping(raw)
    assert ping is None
    return errors


# --- OwnTracks ------------------------------------------------------------------------------

# Shaped after the OwnTracks Booklet, "JSON" page (owntracks.org/booklet/tech/json),
# _type=location with the HTTP-mode extras (topic, tid) and an Android battery status.
OWNTRACKS_LOCATION = json.loads(
    """
    {"_type": "location", "acc": 12, "alt": 48, "batt": 76, "bs": 1, "cog": 270,
     "conn": "m", "created_at": 1714550405, "lat": 48.858093, "lon": 2.294694,
     "t": "u", "tid": "jp", "topic": "owntracks/jane/phone", "tst": 1714550400,
     "vac": 3, "vel": 36, "inregions": ["Work"]}
    """
)

# Other message types posted to the same endpoint (same Booklet page).
OWNTRACKS_OTHERS = json.loads(
    """
    [
      {"_type": "transition", "wtst": 1714000000, "lat": 48.8581, "lon": 2.2946,
       "tst": 1714550500, "acc": 10, "tid": "jp", "event": "enter", "desc": "Work",
       "t": "c", "rid": "7b1e2c"},
      {"_type": "waypoint", "desc": "Home", "lat": 48.85, "lon": 2.35, "rad": 100,
       "tst": 1713000000, "rid": "a1b2c3"},
      {"_type": "lwt", "tst": 1714550000},
      {"_type": "card", "name": "Jane", "tid": "jp"},
      {"_type": "encrypted", "data": "bm90IHJlYWxseSBlbmNyeXB0ZWQ="}
    ]
    """
)


def test_owntracks_location_converts_units():
    pings, ignored = from_owntracks(OWNTRACKS_LOCATION)
    assert ignored == 0 and len(pings) == 1
    ping = valid(pings[0])
    assert ping.client_id is None  # OwnTracks sends no message id
    assert ping.t == datetime(2024, 5, 1, 8, tzinfo=UTC)
    assert (ping.lat, ping.lon, ping.acc, ping.alt) == (48.858093, 2.294694, 12.0, 48.0)
    assert ping.speed == pytest.approx(10.0)  # 36 km/h
    assert ping.heading == 270.0
    assert ping.battery == 76.0


def test_owntracks_minimal_location():
    # acc, alt, cog, vel are only sent when not zero (Booklet notes).
    body = {"_type": "location", "lat": 51.5, "lon": -0.12, "tst": 1714550400, "tid": "jj"}
    pings, _ = from_owntracks(body)
    ping = valid(pings[0])
    assert ping.speed is None and ping.heading is None and ping.battery is None


def test_owntracks_other_types_are_ignored_and_counted():
    pings, ignored = from_owntracks([*OWNTRACKS_OTHERS, OWNTRACKS_LOCATION])
    assert ignored == 4  # encrypted is a Skipped item, counted as dropped
    assert len(pings) == 2 and valid(pings[1]).lat == 48.858093
    assert isinstance(pings[0], Skipped) and pings[0].reason == "encrypted" and pings[0].dropped


def test_owntracks_only_ignored_messages():
    assert from_owntracks({"_type": "lwt", "tst": 1714550000}) == ([], 1)


def test_owntracks_bad_items_are_rejected_individually():
    body = [
        OWNTRACKS_LOCATION,
        "location",
        {"lat": 1, "lon": 2, "tst": 1714550400},
        {"_type": 5},
        {**OWNTRACKS_LOCATION, "tst": "last tuesday"},
        {**OWNTRACKS_LOCATION, "tst": 631152000},  # 1990
        {**OWNTRACKS_LOCATION, "vel": "fast", "lat": 123},
        {"_type": "location", "lat": 1, "lon": 2},
    ]
    pings, ignored = from_owntracks(body)
    assert ignored == 0 and len(pings) == 8
    valid(pings[0])
    assert rejected(pings[1]) == {"_schema": ["must be an object"]}
    assert rejected(pings[2]) == {"_type": ["is required"]}
    assert rejected(pings[3]) == {"_type": ["must be a string"]}
    assert rejected(pings[4]) == {"t": ["must be an ISO-8601 timestamp"]}
    assert rejected(pings[5]) == {"t": ["must be between the years 2000 and 2100"]}
    assert rejected(pings[6]) == {
        "lat": ["must be between -90 and 90"],
        "speed": ["must be a number"],
    }
    assert rejected(pings[7]) == {"t": ["is required"]}


@pytest.mark.parametrize("body", ["location", 42, None])
def test_owntracks_body_must_be_object_or_list(body):
    with pytest.raises(FormatError):
        from_owntracks(body)


# --- Traccar Client / OsmAnd, query parameters -----------------------------------------------

# Query string of Traccar Client (before 9) / OsmAnd as read by traccar's
# OsmAndProtocolDecoder: id, timestamp, lat, lon, speed (knots), bearing, altitude,
# accuracy, batt (percent), plus extras the decoder keeps as attributes.
OSMAND_PARAMS = {
    "id": "864215042011223",
    "timestamp": "1714550400",
    "lat": "47.376887",
    "lon": "8.541694",
    "speed": "10.0",
    "bearing": "92.5",
    "altitude": "408.2",
    "accuracy": "6.0",
    "batt": "64.0",
    "charge": "false",
    "hdop": "0.9",
}


def test_osmand_converts_knots_and_strings():
    identifier, raw = from_osmand(OSMAND_PARAMS)
    assert identifier == "864215042011223"
    ping = valid(raw)
    assert ping.client_id is None
    assert ping.t == datetime(2024, 5, 1, 8, tzinfo=UTC)
    assert (ping.lat, ping.lon) == (47.376887, 8.541694)
    assert ping.speed == pytest.approx(5.144444, abs=1e-6)  # 10 knots
    assert ping.heading == 92.5 and ping.alt == 408.2 and ping.acc == 6.0
    assert ping.battery == 64.0


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"timestamp": "1714550400"}, datetime(2024, 5, 1, 8, tzinfo=UTC)),
        ({"timestamp": "1714550400123"}, datetime(2024, 5, 1, 8, 0, 0, 123000, tzinfo=UTC)),
        ({"timestamp": "2024-05-01T10:00:00+02:00"}, datetime(2024, 5, 1, 8, tzinfo=UTC)),
        ({"timestamp": "2024-05-01T08:00:00.000Z"}, datetime(2024, 5, 1, 8, tzinfo=UTC)),
        ({"time": "1714550400"}, datetime(2024, 5, 1, 8, tzinfo=UTC)),
        ({"time": "2024-05-01T08:00:00Z"}, datetime(2024, 5, 1, 8, tzinfo=UTC)),
    ],
)
def test_osmand_timestamp_variants(params, expected):
    _, raw = from_osmand({"id": "dev1", "lat": "1.5", "lon": "2.5", **params})
    assert valid(raw).t == expected


@pytest.mark.parametrize(
    ("timestamp", "message"),
    [
        ("2024-05-01 10:00:00", "must include a UTC offset"),  # Traccar's server-local form
        ("tomorrow", "must be an ISO-8601 timestamp"),
        ("946684799", "must be between the years 2000 and 2100"),
    ],
)
def test_osmand_bad_timestamps(timestamp, message):
    _, raw = from_osmand({"id": "dev1", "lat": "1.5", "lon": "2.5", "timestamp": timestamp})
    assert rejected(raw) == {"t": [message]}


def test_osmand_missing_timestamp_takes_the_receipt_time():
    # Traccar stores a ping without timestamp at its receipt time; so does govern, marked
    _, raw = from_osmand({"id": "dev1", "lat": "1.5", "lon": "2.5"})
    assert rejected(raw) == {"t": ["is required"]}  # no receipt time given: still refused
    received = datetime(2024, 5, 1, 8, 0, 3, tzinfo=UTC)
    ping, errors = validate_ping(raw, received)
    assert errors == {} and ping.t == received and ping.time_source == "server"


def test_osmand_location_parameter_and_heading_alias():
    params = {
        "deviceid": "dev1",
        "location": "47.5,8.5",
        "heading": "180",
        "timestamp": "1714550400",
    }
    identifier, raw = from_osmand(params)
    ping = valid(raw)
    assert identifier == "dev1"
    assert (ping.lat, ping.lon, ping.heading) == (47.5, 8.5, 180.0)


def test_osmand_garbage_names_the_field():
    params = {**OSMAND_PARAMS, "lat": "forty-seven", "speed": "fast", "batt": "NaN", "altitude": ""}
    _, raw = from_osmand(params)
    assert rejected(raw) == {
        "lat": ["must be a number"],
        "speed": ["must be a number"],
        "battery": ["must be a finite number"],
    }


def test_osmand_bad_location_parameter():
    _, raw = from_osmand({"id": "dev1", "location": "47.5;8.5", "timestamp": "1714550400"})
    assert rejected(raw) == {
        "location": ['must be "latitude,longitude"'],
        "lat": ["is required"],
        "lon": ["is required"],
    }


def test_osmand_requires_an_identifier():
    with pytest.raises(FormatError):
        from_osmand({"lat": "1", "lon": "2", "timestamp": "1714550400"})


# --- Traccar Client 9+, JSON body ------------------------------------------------------------

# Shaped after traccar.org/osmand ("JSON" format of Traccar Client 9.0.0+, Traccar 6.7+).
TRACCAR_JSON = json.loads(
    """
    {
      "location": {
        "timestamp": "2024-05-01T08:00:00.000Z",
        "coords": {"latitude": 47.376887, "longitude": 8.541694, "accuracy": 4.8,
                   "speed": 12.5, "heading": 181.3, "altitude": 409.7},
        "is_moving": true,
        "odometer": 10523.4,
        "event": "motionchange",
        "battery": {"level": 0.63, "is_charging": false},
        "activity": {"type": "in_vehicle"},
        "extras": {}
      },
      "device_id": "48241179"
    }
    """
)


def test_osmand_json_single_location():
    identifier, raws = from_osmand_json(TRACCAR_JSON)
    assert identifier == "48241179" and len(raws) == 1
    ping = valid(raws[0])
    assert ping.client_id is None
    assert ping.t == datetime(2024, 5, 1, 8, tzinfo=UTC)
    assert ping.speed == 12.5  # already m/s
    assert ping.heading == 181.3 and ping.alt == 409.7 and ping.acc == 4.8
    assert ping.battery == pytest.approx(63.0)
    assert ping.activity == "in_vehicle"


def test_osmand_json_location_list_unknowns_and_uuid():
    second = json.loads(json.dumps(TRACCAR_JSON["location"]))
    second["uuid"] = "0c2f3a5e-7a4b-4f3e-9a51-6a1d2b3c4d5e"
    second["coords"].update(speed=-1, heading=-1)
    second["battery"]["level"] = -1
    body = {"device_id": 48241179, "location": [TRACCAR_JSON["location"], second, "junk"]}
    identifier, raws = from_osmand_json(body)
    assert identifier == "48241179"
    ping = valid(raws[1])
    assert ping.client_id == "0c2f3a5e-7a4b-4f3e-9a51-6a1d2b3c4d5e"
    assert ping.speed is None and ping.heading is None and ping.battery is None
    assert rejected(raws[2]) == {"location": ["must be an object"]}
    valid(raws[0])


@pytest.mark.parametrize(
    "body",
    [
        [TRACCAR_JSON],
        {"location": TRACCAR_JSON["location"]},
        {"device_id": "", "location": TRACCAR_JSON["location"]},
        {"device_id": ["x"], "location": TRACCAR_JSON["location"]},
        {"device_id": "48241179"},
    ],
)
def test_osmand_json_body_errors(body):
    with pytest.raises(FormatError):
        from_osmand_json(body)


def test_osmand_json_location_string_is_rejected_item():
    _, raws = from_osmand_json({"device_id": "48241179", "location": "47.3,8.5"})
    assert [rejected(raw) for raw in raws] == [{"location": ["must be an object"]}]


# --- Transistor background-geolocation -------------------------------------------------------

# Shaped after the plugin's "Location Data Schema" (HTTP POST schema, default
# httpRootProperty "location").
TRANSISTOR_LOCATION = json.loads(
    """
    {
      "coords": {"latitude": 45.5192657, "longitude": -73.6169116, "accuracy": 16.4,
                 "speed": 3.2, "heading": 45.7, "altitude": 61.2,
                 "ellipsoidal_altitude": 44.1, "altitude_accuracy": 3.1},
      "extras": {"route_id": 8675309},
      "activity": {"type": "on_bicycle", "confidence": 92},
      "battery": {"level": 0.42, "is_charging": true},
      "timestamp": "2024-05-01T08:00:00.123Z",
      "age": 1203,
      "uuid": "f8424926-ff3e-46f3-bd48-2ec788c9e761",
      "event": "motionchange",
      "is_moving": true,
      "odometer": 2400.5,
      "mock": false
    }
    """
)


def test_transistor_single_location():
    raws = from_transistor({"location": TRANSISTOR_LOCATION, "user_id": 1234})
    assert len(raws) == 1
    ping = valid(raws[0])
    assert ping.client_id == "f8424926-ff3e-46f3-bd48-2ec788c9e761"
    assert ping.t == datetime(2024, 5, 1, 8, 0, 0, 123000, tzinfo=UTC)
    assert (ping.lat, ping.lon, ping.acc, ping.alt) == (45.5192657, -73.6169116, 16.4, 61.2)
    assert ping.speed == 3.2 and ping.heading == 45.7
    assert ping.battery == pytest.approx(42.0)
    assert ping.activity == "on_bicycle"


def test_transistor_batch_sync_list():
    stationary = json.loads(json.dumps(TRANSISTOR_LOCATION))
    stationary["uuid"] = "0b3c4d5e-0000-4000-8000-000000000002"
    stationary["coords"].update(speed=-1, heading=-1)
    stationary["battery"]["level"] = -1
    stationary["activity"]["type"] = "still"
    raws = from_transistor({"location": [TRANSISTOR_LOCATION, stationary]})
    first, second = (valid(raw) for raw in raws)
    assert first.client_id != second.client_id
    assert second.speed is None and second.heading is None and second.battery is None
    assert second.activity == "still"


def test_transistor_root_property_dot():
    # httpRootProperty "." puts the location at the root; batched, the body is a list.
    assert valid(from_transistor(TRANSISTOR_LOCATION)[0]).lat == 45.5192657
    assert len(from_transistor([TRANSISTOR_LOCATION, TRANSISTOR_LOCATION])) == 2


def test_transistor_garbage_items_rejected_individually():
    no_coords = {k: v for k, v in TRANSISTOR_LOCATION.items() if k != "coords"}
    bad_coords = {**TRANSISTOR_LOCATION, "coords": [45.5, -73.6]}
    bad_battery = {**TRANSISTOR_LOCATION, "battery": 0.42}
    bad_time = {**TRANSISTOR_LOCATION, "timestamp": "2024-05-01T08:00:00"}
    bad_lat = {**TRANSISTOR_LOCATION, "coords": {**TRANSISTOR_LOCATION["coords"], "latitude": None}}
    raws = from_transistor(
        {
            "location": [
                TRANSISTOR_LOCATION,
                "oops",
                no_coords,
                bad_coords,
                bad_battery,
                bad_time,
                bad_lat,
            ]
        }
    )
    assert len(raws) == 7
    valid(raws[0])
    assert rejected(raws[1]) == {"location": ["must be an object"]}
    assert rejected(raws[2]) == {"coords": ["is required"]}
    assert rejected(raws[3]) == {"coords": ["must be an object"]}
    assert rejected(raws[4]) == {"battery": ["must be an object"]}
    assert rejected(raws[5]) == {"t": ["must include a UTC offset"]}
    assert rejected(raws[6]) == {"lat": ["is required"]}


def test_transistor_location_string_is_rejected_item():
    assert [rejected(raw) for raw in from_transistor({"location": "45.5,-73.6"})] == [
        {"location": ["must be an object"]}
    ]


@pytest.mark.parametrize("body", ["location", 3, None, {"locations": [TRANSISTOR_LOCATION]}, {}])
def test_transistor_body_errors(body):
    with pytest.raises(FormatError):
        from_transistor(body)


# --- Overland -------------------------------------------------------------------------------

# Shaped after the aaronpk/Overland-iOS README, "API" section.
OVERLAND_BODY = json.loads(
    """
    {
      "locations": [
        {
          "type": "Feature",
          "geometry": {"type": "Point", "coordinates": [-122.030581, 37.3318]},
          "properties": {
            "timestamp": "2024-05-01T01:00:00-0700",
            "altitude": 12,
            "speed": 4,
            "horizontal_accuracy": 30,
            "vertical_accuracy": -1,
            "motion": ["driving", "stationary"],
            "pauses": false,
            "activity": "other_navigation",
            "desired_accuracy": 100,
            "deferred": 1000,
            "significant_change": "disabled",
            "locations_in_payload": 2,
            "battery_state": "charging",
            "battery_level": 0.89,
            "device_id": "iphone-jane",
            "wifi": ""
          }
        },
        {
          "type": "Feature",
          "geometry": {"type": "Point", "coordinates": [-122.0301, 37.3322]},
          "properties": {
            "timestamp": "2024-05-01T08:00:30Z",
            "altitude": 13,
            "speed": -1,
            "course": -1,
            "horizontal_accuracy": 65,
            "motion": [],
            "battery_state": "unknown",
            "battery_level": -1,
            "device_id": "iphone-jane"
          }
        }
      ],
      "current": {"type": "Feature", "geometry": {"type": "Point", "coordinates": [0, 0]},
                  "properties": {"timestamp": "2024-05-01T09:00:00Z"}},
      "trip": {"distance": 1520, "mode": "car", "start": "2024-05-01T07:40:00Z"}
    }
    """
)


def test_overland_features():
    raws = from_overland(OVERLAND_BODY)
    assert len(raws) == 2  # `current` and `trip` are not part of the batch
    first, second = (valid(raw) for raw in raws)
    assert first.client_id is None
    assert first.t == datetime(2024, 5, 1, 8, tzinfo=UTC)
    assert (first.lat, first.lon) == (37.3318, -122.030581)  # GeoJSON order is [lon, lat]
    assert (first.acc, first.alt, first.speed) == (30.0, 12.0, 4.0)
    assert first.battery == pytest.approx(89.0)
    assert first.activity == "driving"
    assert second.speed is None and second.heading is None and second.battery is None
    assert second.activity is None


def test_overland_course_becomes_heading():
    feature = json.loads(json.dumps(OVERLAND_BODY["locations"][0]))
    feature["properties"]["course"] = 123.4
    assert valid(from_overland({"locations": [feature]})[0]).heading == 123.4


def test_overland_garbage_items_rejected_individually():
    good = OVERLAND_BODY["locations"][0]
    props = good["properties"]
    raws = from_overland(
        {
            "locations": [
                good,
                None,
                {**good, "geometry": {"type": "LineString", "coordinates": [[0, 0], [1, 1]]}},
                {**good, "geometry": {"type": "Point", "coordinates": [-122.03]}},
                {**good, "properties": "none"},
                {**good, "properties": {**props, "motion": "driving"}},
                {**good, "properties": {**props, "horizontal_accuracy": -1}},
                {**good, "properties": {**props, "timestamp": 1714550400000}},
                {**good, "geometry": {"type": "Point", "coordinates": ["-122.03", 37.33]}},
            ]
        }
    )
    assert len(raws) == 9
    valid(raws[0])
    point = "must be a GeoJSON Point [longitude, latitude]"
    assert rejected(raws[1]) == {"_schema": ["must be an object"]}
    assert rejected(raws[2]) == {"geometry": [point]}
    assert rejected(raws[3]) == {"geometry": [point]}
    assert rejected(raws[4]) == {"properties": ["must be an object"]}
    assert rejected(raws[5]) == {"activity": ["motion must be a list of strings"]}
    assert rejected(raws[6]) == {"acc": ["must be between 0 and 100000"]}  # iOS: invalid fix
    assert valid(raws[7]).t == datetime(2024, 5, 1, 8, tzinfo=UTC)  # epoch ms still read
    assert rejected(raws[8]) == {"lon": ["must be a number"]}


@pytest.mark.parametrize(
    "body", [[], "x", None, {}, {"locations": None}, {"locations": {"type": "Feature"}}]
)
def test_overland_body_errors(body):
    with pytest.raises(FormatError):
        from_overland(body)


def test_unit_constants():
    assert 36 * KMH == pytest.approx(10.0)
    assert 1 * KNOT == pytest.approx(0.514444, abs=1e-6)
