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


def test_concurrent_partition_creation_never_fails(database_url):
    """Many sessions asking for the same new day partition at once: all succeed."""
    import threading

    day = "2031-03-04"
    errors = []
    barrier = threading.Barrier(6)

    def ask():
        try:
            with psycopg.connect(database_url) as conn:
                barrier.wait()
                conn.execute("SELECT govern_ensure_ping_partition(%s)", (day,))
        except Exception as exc:  # noqa: BLE001 - any failure is the bug
            errors.append(exc)

    threads = [threading.Thread(target=ask) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    try:
        assert errors == []
    finally:
        with psycopg.connect(database_url, autocommit=True) as conn:
            conn.execute("DROP TABLE IF EXISTS pings_20310304")
