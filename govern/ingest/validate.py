"""Validation of one ping in govern's native format.

This is the ingest hot path (a 1,000-ping batch must validate in a few milliseconds), so it
is written by hand: marshmallow costs tens of microseconds per ping. It only checks shape,
types and ranges; whether a ping is too old, in the future or allowed at all is decided later.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

__all__ = ["RECEIVED", "Flawed", "Ping", "Skipped", "parse_time", "validate_ping"]

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MIN_T = datetime(2000, 1, 1, tzinfo=UTC)
_MAX_T = datetime(2101, 1, 1, tzinfo=UTC)  # exclusive: the year 2100 is still allowed
_MIN_EPOCH = (_MIN_T - _EPOCH).total_seconds()
_MAX_EPOCH = (_MAX_T - _EPOCH).total_seconds()
_MS_THRESHOLD = 10**11  # seconds that large are after the year 5000: must be milliseconds
_EPOCH_STRING = re.compile(r"\d+(?:\.\d+)?")

REQUIRED = "is required"
YEAR_RANGE = "must be between the years 2000 and 2100"
NEEDS_OFFSET = "must include a UTC offset"
NOT_ISO = "must be an ISO-8601 timestamp"
NOT_TIME = "must be an ISO-8601 timestamp or epoch seconds or milliseconds"
NOT_OBJECT = "must be an object"

# (key, lowest, highest) of the optional numeric fields, in native units.
_OPTIONAL_NUMBERS = (
    ("acc", 0, 100_000),  # metres
    ("alt", -1000, 100_000),  # metres
    ("speed", 0, 1000),  # metres per second
    ("heading", 0, 360),  # degrees
    ("battery", 0, 100),  # percent
)
_ID_MAX = 100
_ID_LIMIT = 10**_ID_MAX
_ACTIVITY_MAX = 40


@dataclass(slots=True)
class Ping:
    """A ping that passed validation; `t` is aware and in UTC."""

    client_id: str | None
    t: datetime
    lat: float
    lon: float
    acc: float | None = None
    alt: float | None = None
    speed: float | None = None
    heading: float | None = None
    battery: float | None = None
    activity: str | None = None
    time_source: str = "device"  # "server": the client sent no time, `t` is the receipt time


class _Received:
    """The type of RECEIVED."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "RECEIVED"


# A converter's native `t` for a client that sent no time at all (Traccar stores such pings
# at the receipt time, and so does govern, marked time_source "server"). JSON cannot produce
# this object, so no client can claim the server's clock for a ping that has its own time.
RECEIVED = _Received()


class Skipped(dict):
    """An item of a request that is not a storable ping, and why, so it is counted, not lost.

    `dropped` True: it would have been a ping but carries no usable position (a cell/wifi-only
    OsmAnd request, an encrypted OwnTracks message); counted as dropped with `reason`.
    False: it is not a location at all (an Overland visit, trip or tracking-stats feature);
    counted as ignored.
    """

    __slots__ = ("dropped", "reason")

    def __init__(self, reason: str, dropped: bool = True):
        super().__init__()
        self.reason = reason
        self.dropped = dropped


class Flawed(dict):
    """A converted ping plus the errors met while converting it from a client's format.

    Format converters return one of these instead of raising, so that a malformed item is
    rejected on its own with a clear reason while the rest of its batch still counts. JSON
    never produces this type, so a client cannot forge conversion errors.
    """

    __slots__ = ("errors",)

    def __init__(self, fields: dict | None = None, errors: dict[str, list[str]] | None = None):
        super().__init__(fields or {})
        self.errors: dict[str, list[str]] = errors or {}


def _check_range(dt: datetime) -> datetime:
    if not 1999 <= dt.year <= 2101:  # checked first: converting year 1 or 9999 can overflow
        raise ValueError(YEAR_RANGE)
    if dt.tzinfo is not UTC:
        dt = dt.astimezone(UTC)
    if not 2000 <= dt.year <= 2100:
        raise ValueError(YEAR_RANGE)
    return dt


def _parse_iso(value: str) -> datetime:
    try:
        dt = datetime.fromisoformat(value)
    except ValueError:
        raise ValueError(NOT_ISO) from None
    if dt.tzinfo is None or dt.utcoffset() is None:
        raise ValueError(NEEDS_OFFSET)
    return _check_range(dt)


def parse_time(value: object) -> datetime:
    """Read a client's timestamp: ISO-8601 with an offset, or epoch seconds or milliseconds.

    Epochs may be numbers or digit strings; values above 10^11 are taken as milliseconds.
    Returns an aware UTC datetime; raises ValueError with a message fit for the client.
    """
    if isinstance(value, str):
        if not _EPOCH_STRING.fullmatch(value):
            return _parse_iso(value)
        seconds = float(value)
    elif type(value) is int or type(value) is float:
        if not math.isfinite(value):
            raise ValueError(NOT_TIME)
        seconds = value
    elif isinstance(value, datetime):
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError(NEEDS_OFFSET)
        return _check_range(value)
    else:
        raise ValueError(NOT_TIME)
    if seconds > _MS_THRESHOLD:
        seconds = seconds / 1000
    if not _MIN_EPOCH <= seconds < _MAX_EPOCH:
        raise ValueError(YEAR_RANGE)
    return _EPOCH + timedelta(seconds=seconds)


def _time(value: object) -> datetime | str:
    """Native `t`: an ISO-8601 string (or an aware datetime from a converter); else a message.

    Inlined rather than built on parse_time because it runs once per ping.
    """
    if type(value) is str:
        try:
            dt = datetime.fromisoformat(value)
        except ValueError:
            return NOT_ISO
        tz = dt.tzinfo
        if tz is not UTC:
            if tz is None or dt.utcoffset() is None:
                return NEEDS_OFFSET
            if not 1999 <= dt.year <= 2101:  # converting year 1 or 9999 can overflow
                return YEAR_RANGE
            dt = dt.astimezone(UTC)
        return dt if 2000 <= dt.year <= 2100 else YEAR_RANGE
    if isinstance(value, datetime):
        try:
            return parse_time(value)
        except ValueError as error:
            return str(error)
    return "must be an ISO-8601 string"


def _number(value: object, lo: float, hi: float) -> float | str:
    """A finite int or float within [lo, hi] as a float, or the message saying what is wrong."""
    kind = type(value)  # exact types: bool is a subclass of int but is not a number here
    if kind is float:
        if lo <= value <= hi:  # also false for NaN and infinities
            return value
        if not math.isfinite(value):
            return "must be a finite number"
    elif kind is int:
        if lo <= value <= hi:
            return float(value)
    else:
        return "must be a number"
    return f"must be between {lo} and {hi}"


def validate_ping(raw: object, received_at: datetime | None = None
                  ) -> tuple[Ping | None, dict[str, list[str]]]:
    """Check one native ping. Returns (Ping, {}) or (None, {field: [messages]}).

    `received_at` (aware, UTC) is the time of a converted ping whose `t` is RECEIVED."""
    if type(raw) is not dict:
        if isinstance(raw, Flawed):
            return _validate_flawed(raw, received_at)
        if not isinstance(raw, dict):
            return None, {"_schema": [NOT_OBJECT]}
    errors: dict[str, list[str]] = {}
    get = raw.get

    client_id = get("id")
    if client_id is not None:
        if type(client_id) is int:
            # Too many digits would not fit anyway (and str() refuses thousands of them).
            client_id = str(client_id) if -_ID_LIMIT < client_id < _ID_LIMIT else ""
        if type(client_id) is not str:
            errors["id"] = ["must be a string or an integer"]
            client_id = None
        elif not 0 < len(client_id) <= _ID_MAX:
            errors["id"] = [f"must be 1 to {_ID_MAX} characters"]

    t = get("t")
    server_time = t is RECEIVED
    if server_time:
        t = received_at
    if t is None:
        errors["t"] = [REQUIRED]
    else:
        t = _time(t)
        if type(t) is str:
            errors["t"] = [t]

    lat = get("lat")
    if lat is None:
        errors["lat"] = [REQUIRED]
    else:
        lat = _number(lat, -90, 90)
        if type(lat) is str:
            errors["lat"] = [lat]

    lon = get("lon")
    if lon is None:
        errors["lon"] = [REQUIRED]
    else:
        lon = _number(lon, -180, 180)
        if type(lon) is str:
            errors["lon"] = [lon]

    optional = []
    for key, lo, hi in _OPTIONAL_NUMBERS:
        value = get(key)
        if value is not None:
            value = _number(value, lo, hi)
            if type(value) is str:
                errors[key] = [value]
        optional.append(value)

    activity = get("activity")
    if activity is not None:
        if type(activity) is not str:
            errors["activity"] = ["must be a string"]
        elif len(activity) > _ACTIVITY_MAX:
            errors["activity"] = [f"must be at most {_ACTIVITY_MAX} characters"]

    if errors:
        return None, errors
    if server_time:
        return Ping(client_id, t, lat, lon, *optional, activity, "server"), {}
    return Ping(client_id, t, lat, lon, *optional, activity), {}


def _validate_flawed(raw: Flawed, received_at: datetime | None
                     ) -> tuple[None, dict[str, list[str]]]:
    """Report a converter's errors; when it converted some fields, also what is wrong there."""
    if not raw:
        return None, dict(raw.errors)
    _, errors = validate_ping(dict(raw), received_at)
    errors.update(raw.errors)
    return None, errors
