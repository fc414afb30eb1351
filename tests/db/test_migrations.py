"""Migrations go up, down and up again on an empty database."""

import uuid
from urllib.parse import urlsplit, urlunsplit

import psycopg

from govern import migrate


def test_upgrade_downgrade_upgrade(database_url):
    name = f"govern_migr_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = urlunsplit(urlsplit(database_url)._replace(path=f"/{name}"))
    try:
        migrate.upgrade(url)
        migrate.downgrade(url, "base")
        with psycopg.connect(url) as conn:
            left = conn.execute(
                "SELECT count(*) FROM pg_tables WHERE schemaname = 'public' "
                "AND tablename <> 'alembic_version' AND tablename <> 'spatial_ref_sys'"
            ).fetchone()[0]
            assert left == 0
        migrate.upgrade(url)
        with psycopg.connect(url) as conn:
            rev = conn.execute("SELECT version_num FROM alembic_version").fetchone()[0]
            assert rev == migrate.head_revision()
    finally:
        with psycopg.connect(database_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
