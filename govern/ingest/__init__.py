"""Ping ingest: parsing and validation only, with no database or HTTP, so it is cheap to test."""

from govern.ingest.formats import (
    FormatError,
    from_osmand,
    from_osmand_json,
    from_overland,
    from_owntracks,
    from_transistor,
)
from govern.ingest.validate import Flawed, Ping, parse_time, validate_ping

__all__ = [
    "Flawed",
    "FormatError",
    "Ping",
    "from_osmand",
    "from_osmand_json",
    "from_overland",
    "from_owntracks",
    "from_transistor",
    "parse_time",
    "validate_ping",
]
