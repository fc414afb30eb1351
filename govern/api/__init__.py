"""One blueprint per resource."""

from __future__ import annotations

from flask import Flask
from flask_smorest import Api


def register(app: Flask, api: Api) -> None:
    from govern.api import (
        audit,
        device,
        devices,
        disclosures,
        docs,
        health,
        holds,
        ingest,
        me,
        members,
        pings,
        policy,
        purposes,
        reports,
        requests,
        retention,
        subjects,
        tokens,
        tracks,
        zones,
    )

    for module in (health, me, members, tokens, purposes, subjects, devices, device, policy, zones,
                   pings, ingest, holds, retention, tracks, reports, audit, requests,
                   disclosures):
        api.register_blueprint(module.blp)
    from govern.api import sites, travel

    for module in (sites, travel):
        api.register_blueprint(module.blp)
    app.register_blueprint(docs.bp)

    from govern import console

    app.register_blueprint(console.bp)
