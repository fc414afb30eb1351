"""Schema pieces several blueprints share."""

from __future__ import annotations

from marshmallow import Schema, ValidationError, fields, validate

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


class Timezone(fields.String):
    """An IANA time zone name, checked against the zone database."""

    def _deserialize(self, value, attr, data, **kwargs):
        from govern.policy.windows import validate_timezone

        value = super()._deserialize(value, attr, data, **kwargs)
        try:
            return validate_timezone(value)
        except ValueError as exc:
            raise ValidationError(str(exc)) from exc


class CollectionWindows(fields.Field):
    """Weekly collection windows: [{"days": ["mon", ...], "start": "07:00", "end": "19:00"}]."""

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
