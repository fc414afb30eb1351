"""One blueprint per resource."""

from __future__ import annotations

from flask import Flask
from flask_smorest import Api


def register(app: Flask, api: Api) -> None:
    from govern.api import docs, health, members, tokens

    api.register_blueprint(health.blp)
    api.register_blueprint(members.blp)
    api.register_blueprint(tokens.blp)
    app.register_blueprint(docs.bp)
