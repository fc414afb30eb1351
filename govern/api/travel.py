"""Travel: aggregate travel, visit and origin-destination reports (the heatmap's k floor,
aligned periods or differential privacy), and a subject's own travel under a purpose."""

from __future__ import annotations

import datetime as dt

from flask import Response
from flask_smorest import Blueprint
from marshmallow import Schema, fields, validate

from govern.api.auth import principal, require_member
from govern.api.common import actor_kwargs, commit, db, request_now
from govern.api.csv_export import csv_response
from govern.api.schemas import Instant
from govern.domain import reads, travel_reports
from govern.hardening import heavy

blp = Blueprint("travel", __name__, url_prefix="/v1",
                description="Travel reports (stops, trips, visits, origin-destination) and "
                            "individual travel under a purpose.")

READERS = ("owner", "admin", "analyst")
FORMATS = validate.OneOf(("json", "csv"))


class ReportQuery(Schema):
    from_ = Instant(data_key="from", required=True)
    to = Instant(required=True)
    format = fields.String(load_default="json", validate=FORMATS)


class TravelQuery(ReportQuery):
    bucket = fields.String(load_default="day", validate=validate.OneOf(travel_reports.BUCKETS))


class VisitsQuery(TravelQuery):
    site = fields.UUID(load_default=None, metadata={"description": "one site (default: all)"})


class OdQuery(ReportQuery):
    zones = fields.String(load_default="h3:7", validate=validate.Regexp(
        r"^(sites|h3:[0-8])$", error="must be 'sites' or 'h3:<resolution 0-8>'"),
        metadata={"description": "'sites', or H3 cells: 'h3:<resolution 0-8>'"})


class ReportMeta(Schema):
    from_ = fields.DateTime(data_key="from")
    to = fields.DateTime()
    bucket = fields.String()
    zones = fields.String()
    k_min_subjects = fields.Integer()
    suppressed = fields.Integer(metadata={"description": "groups under k, not listed"})
    mode = fields.String(metadata={"description": "aligned (exact) or differential_privacy"})
    period = fields.String(allow_none=True)
    epsilon = fields.Float(allow_none=True, metadata={
        "description": "differential privacy: epsilon this answer spent, per person-day"})
    delta = fields.Float(allow_none=True, metadata={
        "description": "differential privacy: delta this answer spent, per person-day"})
    budget = fields.Dict(allow_none=True, metadata={
        "description": "differential privacy: spent and remaining epsilon and delta of the "
                       "most used day of data the answer touches"})
    dp = fields.Dict(allow_none=True, metadata={
        "description": "differential privacy: unit, groups per person-day, clamps, "
                       "threshold"})
    withheld = fields.List(fields.Dict(), metadata={
        "description": "what was withheld and why: {reason, count, explanation}"})
    released_at = fields.String(allow_none=True, metadata={
        "description": "when this answer was first released (exact mode replays it)"})
    replayed = fields.Boolean()
    generated_at = fields.DateTime()


class TravelBucket(Schema):
    bucket = fields.String(metadata={"description": "start of the UTC day or ISO week"})
    subjects = fields.Integer()
    trips = fields.Integer()
    distance_m = fields.Integer()
    moving_s = fields.Integer()
    stops = fields.Integer()


class Visit(Schema):
    site_id = fields.UUID()
    site = fields.String(allow_none=True)
    bucket = fields.String(metadata={"description": "start of the UTC day or ISO week"})
    visits = fields.Integer()
    subjects = fields.Integer()
    median_dwell_s = fields.Integer()
    p90_dwell_s = fields.Integer()


class OdPair(Schema):
    origin = fields.Dict(metadata={"description": "{cell} or {site_id, site}; a null site: "
                                                 "outside any site"})
    destination = fields.Dict()
    trips = fields.Integer()
    subjects = fields.Integer()


class TravelReport(Schema):
    properties = fields.Nested(ReportMeta)
    buckets = fields.List(fields.Nested(TravelBucket))


class VisitsReport(Schema):
    properties = fields.Nested(ReportMeta)
    visits = fields.List(fields.Nested(Visit))


class OdReport(Schema):
    properties = fields.Nested(ReportMeta)
    pairs = fields.List(fields.Nested(OdPair))


def _meta(query, result, **extra) -> dict:
    return {"from_": query["from_"], "to": query["to"], **extra, **result.meta(),
            "generated_at": request_now()}


def _iso(value: str) -> str:
    return dt.datetime.fromisoformat(value).astimezone(dt.UTC).isoformat().replace(
        "+00:00", "Z")


def _csv(name: str, header: list[str], rows: list[list], suppressed: int) -> Response:
    return csv_response(name, header, rows, {"X-Suppressed-Groups": str(suppressed)})


@blp.route("/reports/travel")
@require_member(*READERS)
@heavy
@blp.arguments(TravelQuery, location="query")
@blp.response(200, TravelReport)
@blp.alt_response(200, content_type="text/csv", description="format=csv")
def travel_report(query):
    """Per day or ISO week: distinct subjects, trips, distance (m), moving time (s) and stops,
    from trips and stops serving an aggregate purpose. Buckets under the tenant's k subjects
    are suppressed and only counted."""
    result = travel_reports.travel_report(db(), principal(), query["from_"], query["to"],
                                          query["bucket"], actor_kwargs()["request_id"],
                                          now=request_now())
    commit()
    if query["format"] == "csv":
        return _csv("travel", ["bucket", "subjects", "trips", "distance_m", "moving_s",
                               "stops"],
                    [[_iso(r["bucket"]), r["subjects"], r["trips"], r["distance_m"],
                      r["moving_s"], r["stops"]] for r in result.rows], result.suppressed)
    return {"properties": _meta(query, result, bucket=query["bucket"]),
            "buckets": result.rows}


@blp.route("/reports/visits")
@require_member(*READERS)
@heavy
@blp.arguments(VisitsQuery, location="query")
@blp.response(200, VisitsReport)
@blp.alt_response(200, content_type="text/csv", description="format=csv")
def visits_report(query):
    """Per site and bucket: visits (stops at the site), distinct subjects, median and 90th
    percentile dwell (s). Groups under k subjects are suppressed and only counted."""
    result = travel_reports.visits_report(db(), principal(), query["from_"], query["to"],
                                          query["bucket"], query["site"],
                                          actor_kwargs()["request_id"], now=request_now())
    commit()
    if query["format"] == "csv":
        return _csv("visits", ["site_id", "site", "bucket", "visits", "subjects",
                               "median_dwell_s", "p90_dwell_s"],
                    [[r["site_id"], r["site"], _iso(r["bucket"]), r["visits"], r["subjects"],
                      r["median_dwell_s"], r["p90_dwell_s"]] for r in result.rows],
                    result.suppressed)
    return {"properties": _meta(query, result, bucket=query["bucket"]),
            "visits": result.rows}


@blp.route("/reports/od")
@require_member(*READERS)
@heavy
@blp.arguments(OdQuery, location="query")
@blp.response(200, OdReport)
@blp.alt_response(200, content_type="text/csv", description="format=csv")
def od_report(query):
    """Origin-destination matrix: trips and distinct subjects per pair of zones (sites, or
    H3 cells). Pairs under k subjects are suppressed and only counted."""
    result = travel_reports.od_report(db(), principal(), query["from_"], query["to"],
                                      query["zones"], actor_kwargs()["request_id"],
                                      now=request_now())
    commit()
    if query["format"] == "csv":
        if query["zones"] == "sites":
            header = ["origin_site_id", "origin_site", "destination_site_id",
                      "destination_site", "trips", "subjects"]
            rows = [[r["origin"]["site_id"], r["origin"]["site"], r["destination"]["site_id"],
                     r["destination"]["site"], r["trips"], r["subjects"]] for r in result.rows]
        else:
            header = ["origin_cell", "destination_cell", "trips", "subjects"]
            rows = [[r["origin"]["cell"], r["destination"]["cell"], r["trips"], r["subjects"]]
                    for r in result.rows]
        return _csv("od", header, rows, result.suppressed)
    return {"properties": _meta(query, result, zones=query["zones"]), "pairs": result.rows}


# ---- individual travel ------------------------------------------------------------------------

class SubjectTravelQuery(Schema):
    purpose = fields.String(required=True, validate=validate.Length(min=1, max=64))
    from_ = Instant(data_key="from", load_default=None,
                                 metadata={"description": "default: 7 days before 'to'"})
    to = Instant(load_default=None, metadata={"description": "default: now"})


class TripEnd(Schema):
    lon = fields.Float()
    lat = fields.Float()
    site = fields.String(allow_none=True)


class SubjectTrip(Schema):
    started_at = fields.DateTime()
    ended_at = fields.DateTime()
    duration_s = fields.Integer()
    moving_s = fields.Integer()
    distance_m = fields.Integer()
    origin = fields.Nested(TripEnd)
    destination = fields.Nested(TripEnd)
    precision_m = fields.Integer()


class TravelDay(Schema):
    date = fields.String(metadata={"description": "local date in the subject's time zone"})
    count = fields.Integer(metadata={"description": "trips started that day"})
    distance_m = fields.Integer()
    moving_s = fields.Integer()
    trips = fields.List(fields.Nested(SubjectTrip))


class SubjectTravel(Schema):
    subject_id = fields.UUID()
    purpose = fields.String()
    timezone = fields.String()
    precision_m = fields.Integer()
    from_ = fields.DateTime(data_key="from")
    to = fields.DateTime()
    days = fields.List(fields.Nested(TravelDay))
    totals = fields.Dict()


@blp.route("/subjects/<uuid:subject_id>/travel")
@require_member()
@heavy
@blp.arguments(SubjectTravelQuery, location="query")
@blp.response(200, SubjectTravel)
def subject_travel(query, subject_id):
    """A subject's trips per local day (distance, moving time, ends at the purpose's
    precision), e.g. for mileage under time tracking. Same rules as tracks: the purpose must
    allow individual reads to your role, the subject's consent must be active now, nothing
    past the purpose's window; audited."""
    t_to = query["to"] or request_now()
    t_from = query["from_"] or t_to - dt.timedelta(days=7)
    body = reads.subject_travel(db(), principal(), subject_id, query["purpose"], t_from, t_to,
                                actor_kwargs()["request_id"], now=request_now())
    commit()  # the audit entry is part of the read
    return {**body, "from_": body.pop("from")}
