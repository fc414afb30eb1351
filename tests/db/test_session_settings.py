"""What every connection govern opens sets, whatever the server's defaults (govern.db)."""

from sqlalchemy import text

from govern.db import make_engine


def test_every_session_is_utc_without_jit_and_with_a_statement_timeout(config, superuser):
    # PostgreSQL's default is jit = on: what the session shows is the connection's option
    assert superuser.execute("SELECT current_setting('jit')").fetchone()[0] == "on"
    engine = make_engine(config.app_database_url, pool_size=1, statement_timeout_ms=1234)
    try:
        with engine.connect() as conn:
            got = conn.execute(text(
                "SELECT current_setting('jit'), current_setting('TimeZone'), "
                "current_setting('statement_timeout')")).one()
    finally:
        engine.dispose()
    assert tuple(got) == ("off", "UTC", "1234ms")
