"""The web console at /console: static HTML, CSS and ES modules over the public API.

The console has no server-side logic of its own: every page calls /v1 with the member's
token (kept in the browser's sessionStorage), so it can do exactly what that token may.
Third-party files (Leaflet, topojson-client, a world-atlas basemap) are vendored under
static/vendor by `make console`; nothing is loaded from a CDN. The only other origin a page
may load from is the configured tile server (TILE_URL), for images only.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

from flask import Blueprint, Response, current_app, jsonify, request, send_from_directory

STATIC = Path(__file__).parent / "static"

bp = Blueprint("console", __name__)

# The console's page: no inline script, nothing from another origin but the basemap's tiles.
CSP = ("default-src 'self'; img-src 'self' data: blob:{tiles}; style-src 'self' "
       "'unsafe-inline'; script-src 'self'; connect-src 'self'; object-src 'none'; "
       "base-uri 'none'; form-action 'self'; frame-ancestors 'none'")


def tile_origin(tile_url: str | None) -> str | None:
    """The one origin the configured tile template loads images from."""
    if not tile_url:
        return None
    parts = urlsplit(tile_url)
    return f"{parts.scheme}://{parts.netloc}"


def csp() -> str:
    origin = tile_origin(current_app.extensions["govern"].config.tile_url)
    return CSP.format(tiles=f" {origin}" if origin else "")


@bp.route("/console")
@bp.route("/console/")
def index():
    resp: Response = send_from_directory(STATIC, "index.html", max_age=0)
    resp.headers["Content-Security-Policy"] = csp()
    resp.headers["Referrer-Policy"] = "no-referrer"
    resp.headers["Cache-Control"] = "no-cache"
    return resp


@bp.route("/console/config.json")
def console_config():
    """What the pages need to know about this deployment: the basemap's tile source."""
    config = current_app.extensions["govern"].config
    tiles = None
    if config.tile_url:
        tiles = {"url": config.tile_url, "attribution": config.tile_attribution,
                 "attribution_url": config.tile_attribution_url}
    resp = jsonify({"tiles": tiles})
    resp.headers["Cache-Control"] = "no-cache"
    return resp


MAX_CELLS = 200


@bp.route("/console/h3")
def h3_cells():
    """Centres and hexagons of H3 cells, for drawing a report's cells on the map: geometry
    only (an H3 index is a place, not data), at most MAX_CELLS per call."""
    import h3

    from govern.exceptions import Invalid

    cells = [c for c in request.args.get("cells", "").split(",") if c]
    if not cells or len(cells) > MAX_CELLS:
        raise Invalid(f"cells: 1 to {MAX_CELLS} comma-separated H3 indexes",
                      {"cells": [f"Give 1 to {MAX_CELLS} cells."]})
    bad = [c for c in cells if not h3.is_valid_cell(c)]
    if bad:
        raise Invalid("cells: not an H3 index", {"cells": [f"Not an H3 index: {bad[0][:20]}"]})
    out = {}
    for cell in cells:
        lat, lon = h3.cell_to_latlng(cell)
        out[cell] = {"lat": lat, "lon": lon,
                     "boundary": [list(p) for p in h3.cell_to_boundary(cell)]}
    return jsonify({"cells": out})


@bp.route("/console/static/<path:filename>")
def static(filename: str):
    # vendored files change only with their version; our own modules revalidate
    max_age = 86_400 if filename.startswith("vendor/") else 0
    resp = send_from_directory(STATIC, filename, max_age=max_age)
    if max_age == 0:
        resp.headers["Cache-Control"] = "no-cache"
    return resp
