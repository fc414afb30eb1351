"""The ceiling of the stack, for bench/single.py: a throwaway Flask app under the same
gunicorn worker model as `govern serve`, that does as little as a request can.

- `POST /bare`: reads the body and answers a small JSON document (Flask + gunicorn alone);
- `POST /insert`: the same, plus one durable single-row INSERT and commit through psycopg 3
  (one connection per worker thread, autocommit off), into the table pgbench fills.

Not part of govern; served as `gunicorn bench._ceiling_app:app` with DATABASE_URL set.
"""

from __future__ import annotations

import os
import threading

import psycopg
from flask import Flask, jsonify, request

from govern.config import libpq_url

app = Flask("ceiling")
_local = threading.local()

INSERT = """INSERT INTO bench_single VALUES ('00000000-0000-0000-0000-000000000001',
  gen_random_uuid(), gen_random_uuid(), now(), ST_SetSRID(ST_MakePoint(%s, %s), 4326), 1, 10,
  md5(random()::text))"""


def _conn() -> psycopg.Connection:
    conn = getattr(_local, "conn", None)
    if conn is None or conn.closed:
        conn = _local.conn = psycopg.connect(libpq_url(os.environ["DATABASE_URL"]))
    return conn


@app.post("/bare")
def bare():
    request.get_data()
    return jsonify([])


@app.post("/insert")
def insert():
    body = request.get_json(force=True, silent=True) or {}
    conn = _conn()
    conn.execute(INSERT, (float(body.get("lon", 13.4)), float(body.get("lat", 52.5))))
    conn.commit()
    return jsonify([])
