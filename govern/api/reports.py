"""/v1/reports: aggregate reports from rollups; never a cell under k subjects."""

from __future__ import annotations

import h3.api.basic_int as h3
from flask_smorest import Blueprint
from marshmallow import Schema, fields, validate

from govern.api.auth import principal, require_member
from govern.api.common import actor_kwargs, commit, db, request_now
from govern.api.csv_export import csv_response
from govern.api.schemas import FeatureCollection, Instant
from govern.domain import reports
from govern.hardening import heavy

blp = Blueprint("reports", __name__, url_prefix="/v1/reports",
                description="Aggregate reports with a k floor and optional differential "
                            "privacy.")

READERS = ("owner", "admin", "analyst")


class HeatmapQuery(Schema):
    from_ = Instant(data_key="from", required=True)
    to = Instant(required=True)
    resolution = fields.Integer(load_default=7, validate=validate.Range(min=5, max=9),
                                metadata={"description": "H3 resolution, 5 (coarse) to 9"})
    format = fields.String(load_default="geojson", validate=validate.OneOf(("geojson", "csv")))


@blp.route("/heatmap")
@require_member(*READERS)
@heavy
@blp.arguments(HeatmapQuery, location="query")
@blp.response(200, FeatureCollection)
@blp.alt_response(200, content_type="text/csv", description="format=csv")
def heatmap(query):
    """Hexagons (H3) with pings and distinct subjects, from rollups only. Without differential
    privacy: only whole UTC days, ISO weeks or months that have ended and settled, each
    released once and replayed verbatim; cells under k, or that could be subtracted from
    what was released before to expose fewer than k people, are withheld and counted per
    reason in `withheld`. With it: any whole hours, charged to the budget of each UTC day
    of data they touch."""
    ctx = actor_kwargs()
    result = reports.heatmap(db(), principal(), query["from_"], query["to"],
                             query["resolution"], ctx["request_id"], now=request_now())
    commit()
    meta = {"from": query["from_"].isoformat(), "to": query["to"].isoformat(),
            "resolution": query["resolution"], **result.meta(),
            "generated_at": request_now().isoformat()}
    if query["format"] == "csv":
        rows = []
        for c in result.rows:
            lat, lon = reports.cell_centre(c["cell"])
            rows.append([h3.int_to_str(c["cell"]), round(lat, 6), round(lon, 6), c["pings"],
                         c["subjects"]])
        return csv_response("heatmap", ["cell", "lat", "lon", "pings", "subjects"], rows,
                            {"X-Suppressed-Cells": str(result.suppressed)})
    return {"type": "FeatureCollection", "properties": meta, "features": [
        {"type": "Feature",
         "geometry": {"type": "Polygon", "coordinates": reports.cell_polygon(c["cell"])},
         "properties": {"cell": h3.int_to_str(c["cell"]), "pings": c["pings"],
                        "subjects": c["subjects"],
                        **({"person_days": c["person_days"]} if "person_days" in c else {})}}
        for c in result.rows]}
