"""Schema pieces several blueprints share."""

from __future__ import annotations

import datetime as dt

from marshmallow import Schema, ValidationError, fields, validate

from govern.api.common import request_now
from govern.models import ROLES

SLUG = validate.Regexp(r"^[a-z][a-z0-9_]{1,63}$",
                       error="must be 2-64 lower-case letters, digits or '_', starting "
                             "with a letter")


class PageQuery(Schema):
    limit = fields.Integer(load_default=100, validate=validate.Range(min=1, max=500))
    after = fields.UUID(load_default=None, metadata={"description": "last id of previous page"})


class Roles(fields.List):
    def __init__(self, **kwargs):
        super().__init__(fields.String(validate=validate.OneOf(ROLES)), **kwargs)


class Instant(fields.AwareDateTime):
    """An instant with a UTC offset, in the years 2000 to 2100 (in UTC, as ping times): a
    year-1 or year-9999 value, which date arithmetic cannot shift without overflowing, is a
    422 naming the field instead of a 500."""

    LOWEST = dt.datetime(2000, 1, 1, tzinfo=dt.UTC)
    HIGHEST = dt.datetime(2101, 1, 1, tzinfo=dt.UTC)  # exclusive
    RANGE = "must be between the years 2000 and 2100 (UTC)"

    def _deserialize(self, value, attr, data, **kwargs):
        parsed = super()._deserialize(value, attr, data, **kwargs)
        if not 1999 <= parsed.year <= 2101:  # checked first: converting year 1 can overflow
            raise ValidationError(self.RANGE)
        if not self.LOWEST <= parsed < self.HIGHEST:
            raise ValidationError(self.RANGE)
        return parsed


def refuse_future(value: dt.datetime, skew: dt.timedelta = dt.timedelta(minutes=5)) -> None:
    """For instants that record something that has happened (a request received): judged
    by the app's clock, as every other decision of the request."""
    if value > request_now() + skew:
        raise ValidationError("may not be in the future")


class JsonObject(fields.Dict):
    """A JSON object of bounded size (evidence, GeoJSON), stored as given."""

    def __init__(self, max_keys: int = 100, **kwargs):
        self.max_keys = max_keys
        super().__init__(keys=fields.String(), **kwargs)

    def _deserialize(self, value, attr, data, **kwargs):
        if not isinstance(value, dict):
            raise ValidationError("must be a JSON object")
        if len(value) > self.max_keys:
            raise ValidationError(f"may have at most {self.max_keys} keys")
        return super()._deserialize(value, attr, data, **kwargs)


def _zone_names() -> list[str]:
    import zoneinfo

    return sorted(z for z in zoneinfo.available_timezones() if z != "localtime")


class Timezone(fields.String):
    """An IANA time zone name, checked against the zone database (documented as an enum)."""

    def __init__(self, **kwargs):
        metadata = {"enum": _zone_names(), **kwargs.pop("metadata", {})}
        super().__init__(metadata=metadata, **kwargs)

    def _deserialize(self, value, attr, data, **kwargs):
        from govern.policy.windows import validate_timezone

        value = super()._deserialize(value, attr, data, **kwargs)
        try:
            return validate_timezone(value)
        except ValueError as exc:
            raise ValidationError(str(exc)) from exc


WINDOW_JSON_SCHEMA = {
    "type": "array", "maxItems": 50,
    "items": {
        "type": "object", "additionalProperties": False,
        "required": ["days", "start", "end"],
        "properties": {
            "days": {"type": "array", "minItems": 1, "uniqueItems": True,
                     "items": {"type": "string", "enum": ["mon", "tue", "wed", "thu", "fri",
                                                          "sat", "sun"]}},
            "start": {"type": "string", "pattern": "^([01][0-9]|2[0-3]):[0-5][0-9]$"},
            "end": {"type": "string", "pattern": "^(([01][0-9]|2[0-3]):[0-5][0-9]|24:00)$",
                    "description": "before start: overnight; start == end is refused"},
        },
    },
}


class CollectionWindows(fields.Field):
    """Weekly collection windows: [{"days": ["mon", ...], "start": "07:00", "end": "19:00"}]."""

    def __init__(self, **kwargs):
        metadata = {**WINDOW_JSON_SCHEMA, **kwargs.pop("metadata", {})}
        super().__init__(metadata=metadata, **kwargs)

    def _deserialize(self, value, attr, data, **kwargs):
        from govern.policy.windows import WindowsInvalid, parse_windows, windows_to_json

        try:
            return windows_to_json(parse_windows(value, field=attr or "collection_windows"))
        except WindowsInvalid as exc:
            raise ValidationError(exc.details or exc.message) from exc

    def _serialize(self, value, attr, obj, **kwargs):
        return value


class FeatureCollection(Schema):
    """RFC 7946 FeatureCollection; `properties` carries the request's metadata."""

    type = fields.String()
    features = fields.List(fields.Dict())
    properties = fields.Dict()


class ErrorBodySchema(Schema):
    code = fields.String(required=True, metadata={"description": "machine-readable"})
    message = fields.String(required=True)
    details = fields.Raw(metadata={"description": "per-field messages, limits, ..."})


class ErrorSchema(Schema):
    """Every 4xx and 5xx answers with this body."""

    error = fields.Nested(ErrorBodySchema, required=True)


class StrictBoolean(fields.Boolean):
    """JSON true or false only (not "yes", 1 or "on")."""

    def _deserialize(self, value, attr, data, **kwargs):
        if not isinstance(value, bool):  # 0 == False in Python: check the type itself
            raise ValidationError("Not a valid boolean.")
        return value


class StrictFloat(fields.Float):
    """A JSON number, never a string."""

    def _deserialize(self, value, attr, data, **kwargs):
        if isinstance(value, str | bool):
            raise ValidationError("Not a valid number.")
        return super()._deserialize(value, attr, data, **kwargs)


def StrictInteger(**kwargs) -> fields.Integer:  # noqa: N802 - reads like a field class
    """A JSON integer, never a string or a fraction."""
    return fields.Integer(strict=True, **kwargs)
