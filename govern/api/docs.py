"""An API docs page that works offline: Swagger UI served from the swagger-ui-bundle package."""

from __future__ import annotations

from flask import Blueprint, Response, send_from_directory
from swagger_ui_bundle import swagger_ui_path

bp = Blueprint("docs", __name__)

PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>govern API</title>
<link rel="stylesheet" href="/docs/static/swagger-ui.css"></head>
<body><div id="ui"></div>
<script src="/docs/static/swagger-ui-bundle.js"></script>
<script>
window.ui = SwaggerUIBundle({url: "/openapi.json", dom_id: "#ui", deepLinking: true});
</script></body></html>
"""


@bp.route("/docs")
def docs_page():
    return Response(PAGE, mimetype="text/html")


@bp.route("/docs/static/<path:filename>")
def docs_static(filename):
    return send_from_directory(swagger_ui_path, filename, max_age=3600)
