"""Converting what existing tracking apps post, unchanged, into native ping dicts.

Field apps cannot be changed to suit a server, so govern reads their own formats. Each
converter only maps names and units (speed to m/s, battery to percent, course to degrees);
`validate_ping` then checks every resulting dict. A malformed item becomes a `Flawed` dict
that fails validation with a clear reason, so it is rejected by its index while the rest of
the batch still counts. Only a body whose overall shape is wrong raises `FormatError`.

Sources of the shapes:
- OwnTracks: Booklet, "JSON" page (owntracks.org/booklet/tech/json).
- Traccar Client / OsmAnd: traccar.org/osmand and traccar's OsmAndProtocolDecoder (query
  parameters; the JSON body of Traccar Client 9+).
- Transistor background-geolocation: "Location Data Schema" and the HTTP guide
  (httpRootProperty, batchSync).
- Overland: aaronpk/Overland-iOS README, "API".
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any

from govern.ingest.validate import NOT_OBJECT, RECEIVED, REQUIRED, Flawed, Skipped, parse_time

__all__ = [
    "FormatError",
    "from_osmand",
    "from_osmand_json",
    "from_overland",
    "from_owntracks",
    "from_transistor",
]

KMH = 1 / 3.6  # km/h -> m/s
KNOT = 1852 / 3600  # knots -> m/s
_NUMBER_STRING = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?")


class FormatError(ValueError):
    """The body as a whole is not in the expected format; the caller answers 400/422."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


def _is_number(value: object) -> bool:
    return (type(value) is int or type(value) is float) and math.isfinite(value)


def _scaled(value: Any, factor: float) -> Any:
    """Convert a unit; anything that is not a number is left for validation to name."""
    return value * factor if _is_number(value) else value


def _known(value: Any) -> Any:
    """iOS and the Transistor SDK send -1 for an unknown speed, course or battery level
    (OwnTracks iOS 8.3.0-8.3.1 sent -3: owntracks/ios#347); unknown is null, not invalid."""
    return None if _is_number(value) and value < 0 else value


def _known_accuracy(value: Any) -> Any:
    """No fix is exact to 0 m: 0 means unknown (Traccar Client Android sends accuracy=0.0 for
    every GPS fix). Negative accuracies stay, for validation to refuse: on iOS they mean the
    coordinates themselves are invalid."""
    return None if value == 0 and _is_number(value) else value


def _fraction_to_percent(value: Any) -> Any:
    return _scaled(_known(value), 100)


def _finish(native: dict, raw_time: Any, errors: dict[str, list[str]]) -> dict:
    """Parse the timestamp into native `t` and wrap the result if anything went wrong."""
    if raw_time is not None:
        try:
            native["t"] = parse_time(raw_time)
        except ValueError as error:
            errors["t"] = [str(error)]
    return Flawed(native, errors) if errors else native


def _sub_object(parent: Mapping, key: str, errors: dict[str, list[str]]) -> Mapping:
    """An optional nested object (battery, activity); a non-object is reported, not raised."""
    value = parent.get(key)
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        errors[key] = [NOT_OBJECT]
        return {}
    return value


# --- OwnTracks --------------------------------------------------------------------------


def from_owntracks(body: Any) -> tuple[list[dict], int]:
    """OwnTracks HTTP mode: one message object (or a list of them) per request.

    Only `_type: "location"` carries a position; transition, waypoint(s), lwt, card, status,
    steps and other types are ignored and counted. `encrypted` may hide a location govern
    cannot read: it becomes a Skipped item, counted as dropped ("encrypted"). OwnTracks sends
    no message id, so client_id is None and the caller dedupes by recorded time.
    """
    if isinstance(body, Mapping):
        items: list = [body]
    elif isinstance(body, list):
        items = body
    else:
        raise FormatError("The body must be an OwnTracks message object or a list of them.")
    pings: list[dict] = []
    ignored = 0
    for item in items:
        if not isinstance(item, Mapping):
            pings.append(Flawed({}, {"_schema": [NOT_OBJECT]}))
            continue
        kind = item.get("_type")
        if kind is None:
            pings.append(Flawed({}, {"_type": [REQUIRED]}))
        elif not isinstance(kind, str):
            pings.append(Flawed({}, {"_type": ["must be a string"]}))
        elif kind == "encrypted":
            # a location (or anything) the app encrypted with a key govern does not have:
            # counted as dropped, so an admin sees the app must not encrypt for this endpoint
            pings.append(Skipped("encrypted"))
        elif kind != "location":
            ignored += 1
        else:
            pings.append(_owntracks_location(item))
    return pings, ignored


def _owntracks_location(item: Mapping) -> dict:
    native = {
        "lat": item.get("lat"),
        "lon": item.get("lon"),
        "acc": _known_accuracy(_known(item.get("acc"))),  # metres; iOS: only if >= 0
        "alt": item.get("alt"),  # metres
        "speed": _scaled(_known(item.get("vel")), KMH),  # km/h; iOS: -1 (or -3) unknown
        "heading": _known(item.get("cog")),  # degrees; iOS: -1 unknown
        "battery": _known(item.get("batt")),  # percent
    }
    return _finish(native, item.get("tst"), {})  # epoch seconds


# --- Traccar Client / OsmAnd --------------------------------------------------------------


def _param_number(value: Any) -> Any:
    """A query-string number as a float; garbage is kept as the string so validation names it."""
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        return value
    text = value.strip()
    if _NUMBER_STRING.fullmatch(text):
        return float(text)
    if text.lower() in ("nan", "inf", "+inf", "-inf", "infinity", "-infinity"):
        return float(text)  # validation says "must be a finite number"
    return value


def from_osmand(params: Mapping[str, str]) -> tuple[str, dict]:
    """One location from query or form parameters (OsmAnd app, Traccar Client before 9).

    Returns (device identifier, native dict). `speed` is in knots in this protocol. The
    timestamp may be epoch seconds, epoch milliseconds or ISO-8601 with an offset (Traccar also
    reads "yyyy-MM-dd HH:mm:ss" as server local time; that is ambiguous, so it is rejected).
    Without any timestamp the ping takes the receipt time (RECEIVED), as Traccar does. The
    parameter names are those Traccar's OsmAndProtocolDecoder reads: `deviceid`, `location`,
    `heading`, `hacc` (accuracy when `accuracy` is absent); `hdop`, `vacc` and `charge` are
    read by Traccar as attributes and have no place here. A request without any position
    (cell towers and wifi only, or `valid=false`) is Skipped as "no_fix". -1 for speed,
    bearing or battery and 0 for accuracy mean unknown. There is no per-message id:
    client_id is None.
    """
    identifier = params.get("id") or params.get("deviceid")
    if not identifier:
        raise FormatError("The parameter id (or deviceid) is required.")
    errors: dict[str, list[str]] = {}
    lat = _param_number(params.get("lat"))
    lon = _param_number(params.get("lon"))
    location = params.get("location")
    if (lat is None and lon is None and not location) or (
            str(params.get("valid", "")).lower() in ("false", "0")):
        return str(identifier), Skipped("no_fix")
    if lat is None and lon is None and location:
        parts = location.split(",")
        if len(parts) == 2:
            lat, lon = _param_number(parts[0]), _param_number(parts[1])
        else:
            errors["location"] = ['must be "latitude,longitude"']
    speed = _param_number(params.get("speed"))
    heading = params.get("bearing")
    if heading is None or heading == "":
        heading = params.get("heading")
    accuracy = params.get("accuracy")
    if accuracy is None or accuracy == "":
        accuracy = params.get("hacc")
    accuracy = _param_number(accuracy)
    native = {
        "lat": lat,
        "lon": lon,
        "acc": None if _is_number(accuracy) and accuracy <= 0 else accuracy,  # metres
        "alt": _param_number(params.get("altitude")),
        "speed": _scaled(_known(speed), KNOT),
        "heading": _known(_param_number(heading)),  # Traccar Client iOS: -1.0 unknown
        "battery": _known(_param_number(params.get("batt"))),  # percent, "87" or "87.5"
    }
    raw_time = params.get("timestamp") or params.get("time") or None
    if raw_time is None:
        native["t"] = RECEIVED
    return str(identifier), _finish(native, raw_time, errors)


def from_osmand_json(body: Any) -> tuple[str, list[dict]]:
    """The JSON body of Traccar Client 9+: `{"device_id": ..., "location": {...} or [...]}`.

    Traccar Client is built on the Transistor SDK, so each location has its shape (speed in
    m/s, battery level as a fraction, -1 for unknown); `uuid`, when present, is the client id.
    A location without `coords` is no fix (Traccar then uses the last known position; govern
    keeps nothing it did not measure): Skipped as "no_fix".
    """
    if not isinstance(body, Mapping):
        raise FormatError("The body must be a JSON object with device_id and location.")
    identifier = body.get("device_id")
    if type(identifier) is int:
        identifier = str(identifier)
    if not isinstance(identifier, str) or not identifier:
        raise FormatError("device_id is required and must be a string.")
    if "location" not in body:
        raise FormatError("location is required.")
    return identifier, _transistor_locations(body["location"], missing_coords_is_no_fix=True)


# --- Transistor background-geolocation -------------------------------------------------


def from_transistor(body: Any) -> list[dict]:
    """Transistor background-geolocation's default HTTP body.

    `{"location": {...}}` per location, or `{"location": [...]}` with batchSync. With
    httpRootProperty "." the location itself is the body (or, batched, a top-level list).
    Other root names are app configuration, not the plugin's format, and are not guessed.
    """
    if isinstance(body, list):
        return [_transistor_location(item) for item in body]
    if not isinstance(body, Mapping):
        raise FormatError("The body must be a JSON object or a list of locations.")
    if "location" in body:
        return _transistor_locations(body["location"])
    if "coords" in body:
        return [_transistor_location(body)]
    raise FormatError('The body must have a "location" object or list.')


def _transistor_locations(value: Any, missing_coords_is_no_fix: bool = False) -> list[dict]:
    if isinstance(value, list):
        return [_transistor_location(item, missing_coords_is_no_fix) for item in value]
    return [_transistor_location(value, missing_coords_is_no_fix)]


def _transistor_location(loc: Any, missing_coords_is_no_fix: bool = False) -> dict:
    if not isinstance(loc, Mapping):
        return Flawed({}, {"location": [NOT_OBJECT]})
    coords = loc.get("coords")
    if coords is None:
        if missing_coords_is_no_fix:
            return Skipped("no_fix")
        return Flawed({}, {"coords": [REQUIRED]})
    if not isinstance(coords, Mapping):
        return Flawed({}, {"coords": [NOT_OBJECT]})
    errors: dict[str, list[str]] = {}
    battery = _sub_object(loc, "battery", errors)
    activity = _sub_object(loc, "activity", errors)
    native = {
        "id": loc.get("uuid"),
        "lat": coords.get("latitude"),
        "lon": coords.get("longitude"),
        "acc": _known_accuracy(coords.get("accuracy")),  # metres
        "alt": coords.get("altitude"),  # metres
        "speed": _known(coords.get("speed")),  # m/s
        "heading": _known(coords.get("heading")),  # degrees
        "battery": _fraction_to_percent(battery.get("level")),  # 0..1
        "activity": activity.get("type"),
    }
    return _finish(native, loc.get("timestamp"), errors)  # ISO-8601 UTC


# --- Overland -------------------------------------------------------------------------------


def from_overland(body: Any) -> list[dict]:
    """Overland: `{"locations": [GeoJSON Point Feature, ...]}`, up to its batch size.

    Overland sends no per-location id (client_id is None; dedupe by recorded time). The
    optional `current` and `trip` objects are ignored: `current` is still in the device's
    queue and arrives later as part of a batch. Features that are not location fixes share
    the list (Overland-iOS GLManager.m): tracking-stats and visit features carry
    `properties.action`, finished trips `properties.type: "trip"`; they are Skipped (ignored,
    counted), not stored as pings at the time they were logged.
    """
    if not isinstance(body, Mapping):
        raise FormatError('The body must be a JSON object with a "locations" list.')
    locations = body.get("locations")
    if not isinstance(locations, list):
        raise FormatError('"locations" is required and must be a list.')
    return [_overland_feature(feature) for feature in locations]


def _overland_feature(feature: Any) -> dict:
    if not isinstance(feature, Mapping):
        return Flawed({}, {"_schema": [NOT_OBJECT]})
    props = feature.get("properties")
    if isinstance(props, Mapping) and (props.get("action") is not None
                                       or props.get("type") == "trip"):
        return Skipped("trip" if props.get("type") == "trip" else "action", dropped=False)
    geometry = feature.get("geometry")
    coordinates = geometry.get("coordinates") if isinstance(geometry, Mapping) else None
    if (
        not isinstance(geometry, Mapping)
        or geometry.get("type") != "Point"
        or not isinstance(coordinates, list)
        or len(coordinates) < 2
    ):
        return Flawed({}, {"geometry": ["must be a GeoJSON Point [longitude, latitude]"]})
    props = feature.get("properties")
    if not isinstance(props, Mapping):
        return Flawed({}, {"properties": [NOT_OBJECT]})
    errors: dict[str, list[str]] = {}
    motion = props.get("motion")
    activity = None
    if isinstance(motion, list):
        activity = motion[0] if motion else None
    elif motion is not None:
        errors["activity"] = ["motion must be a list of strings"]
    native = {
        "lat": coordinates[1],
        "lon": coordinates[0],
        "acc": _known_accuracy(props.get("horizontal_accuracy")),  # m; negative: invalid fix
        "alt": props.get("altitude"),  # metres
        "speed": _known(props.get("speed")),  # m/s
        "heading": _known(props.get("course")),  # degrees
        "battery": _fraction_to_percent(props.get("battery_level")),  # 0..1
        "activity": activity,
    }
    return _finish(native, props.get("timestamp"), errors)  # ISO-8601 with offset
