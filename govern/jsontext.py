"""JSON as text, the one way govern writes it: orjson, anything else (instants, UUIDs,
decimals) as its str(). For SQLAlchemy's json_serializer, jsonb parameters, log lines."""

from __future__ import annotations

import orjson


def dumps(value) -> str:
    return orjson.dumps(value, default=str).decode()
