"""Individual-level reads: a subject's track (GeoJSON or GPX) and the team's latest
positions. Every read names a purpose and is audited."""

from __future__ import annotations

import datetime as dt
from xml.etree import ElementTree as ET

from flask import Response
from flask_smorest import Blueprint
from marshmallow import Schema, fields, validate

from govern.api.auth import principal, require_member
from govern.api.common import actor_kwargs, commit, db, request_now
from govern.api.schemas import FeatureCollection, Instant
from govern.domain import reads
from govern.hardening import heavy

blp = Blueprint("tracks", __name__, url_prefix="/v1",
                description="Individual tracks and positions, under a purpose.")


class TrackQuery(Schema):
    purpose = fields.String(required=True, validate=validate.Length(min=1, max=64))
    from_ = Instant(data_key="from", load_default=None,
                                 metadata={"description": "default: 24 hours before 'to'"})
    to = Instant(load_default=None, metadata={"description": "default: now"})
    limit = fields.Integer(load_default=1000, validate=validate.Range(min=1, max=10_000))
    cursor = fields.String(load_default=None, validate=validate.Length(max=300))


class PositionsQuery(Schema):
    purpose = fields.String(required=True, validate=validate.Length(min=1, max=64))


def _range(query) -> tuple[dt.datetime, dt.datetime]:
    t_to = query["to"] or request_now()
    return query["from_"] or t_to - dt.timedelta(hours=24), t_to


def _track(query, subject_id, fmt):
    t_from, t_to = _range(query)
    ctx = actor_kwargs()
    track = reads.read_track(db(), principal(), subject_id, query["purpose"], t_from, t_to,
                             limit=query["limit"], cursor=query["cursor"],
                             request_id=ctx["request_id"], fmt=fmt, now=request_now())
    commit()  # the audit entry is part of the read
    return track


@blp.route("/subjects/<uuid:subject_id>/track")
@require_member()
@heavy
@blp.arguments(TrackQuery, location="query")
@blp.response(200, FeatureCollection)
def track(query, subject_id):
    """A subject's pings that serve the purpose now, time-ordered, at its precision
    (RFC 7946 GeoJSON). Page with `cursor` = the previous page's `next_cursor`."""
    t = _track(query, subject_id, "geojson")
    return {"type": "FeatureCollection", "features": [
        {"type": "Feature", "geometry": {"type": "Point", "coordinates": [r.lon, r.lat]},
         "properties": {"t": r.at.isoformat(), "precision_m": r.precision_m}}
        for r in t.points],
        "properties": {"purpose": query["purpose"], "next_cursor": t.next_cursor}}


GPX_NS = "http://www.topografix.com/GPX/1/1"


def gpx_document(name: str, points) -> str:
    """A GPX 1.1 document of one track segment (points with lat, lon and an instant `at`)."""
    gpx = ET.Element("gpx", {"version": "1.1", "creator": "govern", "xmlns": GPX_NS})
    trk = ET.SubElement(gpx, "trk")
    ET.SubElement(trk, "name").text = name
    seg = ET.SubElement(trk, "trkseg")
    for r in points:
        pt = ET.SubElement(seg, "trkpt", {"lat": f"{r.lat:.7f}", "lon": f"{r.lon:.7f}"})
        ET.SubElement(pt, "time").text = r.at.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return ('<?xml version="1.0" encoding="UTF-8"?>\n'
            + ET.tostring(gpx, encoding="unicode", short_empty_elements=False))


@blp.route("/subjects/<uuid:subject_id>/track.gpx")
@require_member()
@heavy
@blp.arguments(TrackQuery, location="query")
@blp.response(200, content_type="application/gpx+xml")
def track_gpx(query, subject_id):
    """The same track as GPX 1.1, for GIS tools. The next page's cursor is in X-Next-Cursor."""
    t = _track(query, subject_id, "gpx")
    body = gpx_document(f"{subject_id} ({query['purpose']}, {t.precision_m} m)", t.points)
    resp = Response(body, mimetype="application/gpx+xml")
    if t.next_cursor:
        resp.headers["X-Next-Cursor"] = t.next_cursor
    return resp


@blp.route("/positions/latest")
@require_member()
@blp.arguments(PositionsQuery, location="query")
@blp.response(200, FeatureCollection)
def latest_positions(query):
    """The latest allowed position of each subject under the purpose (dispatch)."""
    ctx = actor_kwargs()
    rows = reads.latest_positions(db(), principal(), query["purpose"], ctx["request_id"],
                                  now=request_now())
    commit()
    return {"type": "FeatureCollection", "features": [
        {"type": "Feature", "geometry": {"type": "Point", "coordinates": [r.lon, r.lat]},
         "properties": {"subject_id": str(r.subject_id), "external_ref": r.external_ref,
                        "display_name": r.display_name, "t": r.at.isoformat(),
                        "precision_m": r.precision_m}} for r in rows],
        "properties": {"purpose": query["purpose"]}}
