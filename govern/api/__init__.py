"""One blueprint per resource."""

from __future__ import annotations

from flask import Flask
from flask_smorest import Api


def register(app: Flask, api: Api) -> None:
    from govern.api import (
        device,
        devices,
        docs,
        health,
        ingest,
        members,
        pings,
        policy,
        purposes,
        subjects,
        tokens,
        zones,
    )

    for module in (health, members, tokens, purposes, subjects, devices, device, policy, zones,
                   pings, ingest):
        api.register_blueprint(module.blp)
    app.register_blueprint(docs.bp)
