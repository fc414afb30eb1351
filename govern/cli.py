"""The `govern` command line (click, through Flask's CLI)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import click

from govern.clock import SystemClock
from govern.config import Config

ROOT = Path(__file__).resolve().parent.parent


class GovernGroup(click.Group):
    """Every command's failure in one clear line (what is wrong, what to run) and a non-zero
    exit, never a traceback: a missing or unreachable database, or a refusal by the domain."""

    def invoke(self, ctx):
        import psycopg
        from sqlalchemy.exc import OperationalError

        from govern.config import NoDatabase
        from govern.exceptions import GovernError

        try:
            return super().invoke(ctx)
        except NoDatabase as exc:
            raise click.ClickException(
                "no database: DATABASE_URL is not set and the project-local cluster (var/pg) is "
                "not running. Start it with `make run` (or `govern up`), or set DATABASE_URL."
            ) from exc
        except (OperationalError, psycopg.OperationalError) as exc:
            orig = getattr(exc, "orig", None) or exc
            first = str(orig).strip().splitlines()[0]
            if isinstance(orig, psycopg.errors.QueryCanceled):
                raise click.ClickException(
                    f"the database cancelled a statement ({first}); for long runs raise "
                    "DB_STATEMENT_TIMEOUT_MS (milliseconds).") from exc
            raise click.ClickException(
                f"cannot reach the database ({first}). Is it running? `make run` starts the "
                "project-local one; otherwise check DATABASE_URL.") from exc
        except GovernError as exc:
            raise click.ClickException(exc.message) from exc


@click.group(cls=GovernGroup)
def main():
    """govern: a location data governor for mobile backends.

    Without DATABASE_URL, commands use the project-local cluster that `make run` started.
    """


def _config() -> Config:
    from govern.observability import configure_logging

    if not os.environ.get("DATABASE_URL"):
        cluster = local_cluster()
        if cluster.initialised() and cluster.running():
            os.environ["DATABASE_URL"] = cluster.url()
    config = Config.from_env()
    configure_logging(config.log_level)
    return config


def _owner_engine(config: Config):
    """The schema owner's engine, as the scheduler's jobs use it (DB_STATEMENT_TIMEOUT_MS
    applies here too)."""
    from govern.db import make_engine

    return make_engine(config.database_url, pool_size=1,
                       statement_timeout_ms=config.db_statement_timeout_ms)


def _owner_sessions(config: Config):
    from govern import jsontext
    from govern.db import make_engine, make_sessionmaker

    return make_sessionmaker(make_engine(config.app_database_url, pool_size=1,
                                         statement_timeout_ms=config.db_statement_timeout_ms,
                                         json_serializer=jsontext.dumps))


# ---- db -------------------------------------------------------------------------------------

@main.group()
def db():
    """Schema migrations (run with DATABASE_URL, the schema owner)."""


@db.command("upgrade")
@click.argument("revision", default="head")
def db_upgrade(revision):
    """Apply migrations up to REVISION (default: head)."""
    from govern import migrate

    migrate.upgrade(_config().database_url, revision)
    click.echo(f"database at {revision}")


@db.command("downgrade")
@click.argument("revision", default="-1")
def db_downgrade(revision):
    """Revert migrations down to REVISION (default: one step; 'base' for all)."""
    from govern import migrate

    migrate.downgrade(_config().database_url, revision)
    click.echo(f"database downgraded to {revision}")


@db.command("distribute")
@click.option("--shard-count", type=int, default=None,
              help="shards per distributed table (default: citus.shard_count, 32)")
def db_distribute(shard_count):
    """On a Citus coordinator, distribute every tenant table by tenant_id (co-located with
    tenants) and make the routing table a reference table; idempotent. On plain PostgreSQL
    it changes nothing."""
    from govern.sql.distribution import distribute

    engine = _owner_engine(_config())
    try:
        with engine.begin() as conn:
            result = distribute(conn, shard_count=shard_count)
    finally:
        engine.dispose()
    if not result.citus:
        click.echo("not a Citus coordinator (no citus extension): nothing to distribute")
        return
    click.echo(f"distributed by tenant_id ({len(result.distributed)}): "
               f"{', '.join(result.distributed)}")
    click.echo(f"reference: {', '.join(result.reference)}")
    click.echo(f"local to the coordinator: {', '.join(result.local)}")
    done = result.newly_distributed + result.newly_reference
    click.echo(f"newly distributed now: {', '.join(done) if done else 'none (already done)'}")
    if result.foreign_keys_changed:
        click.echo("foreign keys without ON DELETE SET NULL: "
                   + ", ".join(result.foreign_keys_changed))


# ---- tenants --------------------------------------------------------------------------------

@main.group()
def tenant():
    """Tenants (client organisations)."""


@tenant.command("create")
@click.argument("name")
@click.option("--owner-email", default="owner@localhost", show_default=True)
def tenant_create(name, owner_email):
    """Create a tenant with its owner; prints the owner token once, as JSON."""
    from govern.db import tenant_session
    from govern.domain.tenants import create_tenant

    sessions = _owner_sessions(_config())
    with tenant_session(sessions, None) as session:
        created = create_tenant(session, name, owner_email=owner_email)
    click.echo(json.dumps({"tenant_id": str(created.tenant_id),
                           "owner_token": created.owner_token}))


# ---- tokens ---------------------------------------------------------------------------------

@main.group()
def token():
    """Member tokens, minted by the operator (e.g. to recover a locked-out owner)."""


def _resolve_tenant(config: Config, given: str):
    """A tenant by id, or by name or its slug (lower case, runs of other characters as
    '-'); refused when it names no tenant or several."""
    import uuid

    import psycopg

    try:
        return uuid.UUID(given)
    except ValueError:
        pass
    from govern.config import libpq_url

    with psycopg.connect(libpq_url(config.database_url)) as conn:
        rows = conn.execute(
            "SELECT tenant_id FROM tenants WHERE lower(name) = lower(%(g)s) "
            "OR trim(both '-' from regexp_replace(lower(name), '[^a-z0-9]+', '-', 'g')) "
            "= lower(%(g)s)", {"g": given.strip()}).fetchall()
    if len(rows) != 1:
        raise click.ClickException(
            f"{'no tenant' if not rows else f'{len(rows)} tenants'} named {given!r}"
            + ("; give the tenant id" if rows else ""))
    return rows[0][0]


@token.command("create")
@click.option("--tenant", "tenant_ref", required=True, help="tenant id, name or slug")
@click.option("--member", default=None, help="the member's email or member id")
@click.option("--role", default=None,
              help="the longest-standing member with this role (added if none)")
@click.option("--name", default="operator recovery", show_default=True)
def token_create(tenant_ref, member, role, name):
    """Mint a member token; prints it once, as JSON. Audited as the operator (`cli`)."""
    from govern.db import tenant_session
    from govern.domain.tokens import recover_member_token
    from govern.exceptions import GovernError

    if (member is None) == (role is None):
        raise click.UsageError("give --member or --role (one of them)")
    config = _config()
    tenant_id = _resolve_tenant(config, tenant_ref)
    try:
        with tenant_session(_owner_sessions(config), tenant_id) as session:
            secret, row, holder = recover_member_token(session, tenant_id, member=member,
                                                       role=role, name=name)
            out = {"tenant_id": str(tenant_id), "member_id": str(holder.member_id),
                   "role": holder.role, "token_id": str(row.token_id), "token": secret}
    except (GovernError, ValueError) as exc:
        raise click.ClickException(getattr(exc, "message", str(exc))) from exc
    click.echo(json.dumps(out))


# ---- retention ------------------------------------------------------------------------------

@main.group()
def retention():
    """Retention: age, coarsen and delete pings as windows close."""


@retention.command("run")
@click.option("--tenant", "tenant_id", default=None, type=click.UUID,
              help="only this tenant (skips partition maintenance)")
@click.option("--dry-run", is_flag=True, help="count what would change; change nothing")
@click.option("--batch", default=5000, show_default=True, type=click.IntRange(10, 100_000),
              help="pings per transaction")
def retention_run(tenant_id, dry_run, batch):
    """Run the retention job once, as the scheduler does, and print what it did."""
    from tqdm import tqdm

    from govern.domain.retention import Budget, run_all
    from govern.scheduler import JobBusy, job_lock

    config = _config()
    owner = _owner_engine(config)
    try:
        # the scheduler's own lock: never two retention runs at once, whoever starts them
        with job_lock(config, "retention"), \
                tqdm(desc="retention", unit=" pings", disable=None) as bar:
            report = run_all(owner, _owner_sessions(config), tenant_id=tenant_id,
                             dry_run=dry_run, batch=batch, budget=Budget(on_batch=bar.update))
    except JobBusy as exc:
        raise click.ClickException("a retention run is already in progress") from exc
    click.echo(json.dumps({"dry_run": dry_run, **report}, indent=2, default=str))


# ---- subjects and audit ---------------------------------------------------------------------

@main.group()
def subject():
    """Data subject rights from the command line."""


@subject.command("export")
@click.argument("subject_id", type=click.UUID)
@click.option("--tenant", "tenant_id", required=True, type=click.UUID)
@click.option("--out", "out_path", required=True, type=click.Path(dir_okay=False),
              help="the zip to write")
def subject_export(subject_id, tenant_id, out_path):
    """Write everything held about a subject to a zip (streamed; any size)."""
    from tqdm import tqdm

    from govern.domain.rights import export_bundle

    sessions = _owner_sessions(_config())
    with open(out_path, "wb") as fh, tqdm(desc="export", unit=" pings", disable=None) as bar:
        for chunk in export_bundle(sessions, tenant_id, subject_id, SystemClock().now(),
                                   on_rows=bar.update):
            fh.write(chunk)
    click.echo(json.dumps({"subject_id": str(subject_id), "written": out_path}))


@subject.command("erase")
@click.argument("subject_id", type=click.UUID)
@click.option("--tenant", "tenant_id", required=True, type=click.UUID)
@click.option("--request", "request_id", default=None, type=click.UUID,
              help="the erasure request this fulfils")
@click.option("--yes", is_flag=True, help="do not ask for confirmation")
def subject_erase(subject_id, tenant_id, request_id, yes):
    """Erase a subject (refused while a legal hold applies); prints the tombstone."""
    from tqdm import tqdm

    from govern.domain.rights import erase_subject
    from govern.exceptions import GovernError

    if not yes:
        click.confirm(f"Erase subject {subject_id}? This cannot be undone", abort=True)
    sessions = _owner_sessions(_config())
    try:
        with tqdm(desc="erase", unit=" pings", disable=None) as bar:
            result = erase_subject(sessions, tenant_id, subject_id, "cli", request_id=request_id,
                                   on_batch=bar.update, now=SystemClock().now())
    except GovernError as exc:
        raise click.ClickException(exc.message) from exc
    click.echo(json.dumps(result, default=str, indent=2))


@main.group("audit")
def audit_group():
    """The tamper-evident audit log."""


@audit_group.command("verify")
@click.option("--tenant", "tenant_id", default=None, type=click.UUID,
              help="one tenant (default: all)")
def audit_verify(tenant_id):
    """Check every tenant's hash chain; exit 1 if any is broken."""
    from govern.db import tenant_session
    from govern.domain.audit import verify_chain
    from govern.domain.tenants import tenant_ids

    config = _config()
    sessions = _owner_sessions(config)
    ids = [tenant_id] if tenant_id else tenant_ids(_owner_engine(config))
    broken = 0
    for tid in ids:
        with tenant_session(sessions, tid) as s:
            result = verify_chain(s)
        broken += not result["ok"]
        click.echo(json.dumps({"tenant_id": str(tid), **result}))
    if broken:
        raise SystemExit(1)


# ---- trips ----------------------------------------------------------------------------------

@main.group()
def trips():
    """Stops and trips derived from pings."""


@trips.command("build")
@click.option("--tenant", "tenant_id", default=None, type=click.UUID, help="only this tenant")
def trips_build(tenant_id):
    """Build stops and trips from the pings that arrived since the last build, as the
    scheduler does, with a progress bar; prints what it built."""
    from tqdm import tqdm

    from govern.domain.trips import build_all

    config = _config()
    owner = _owner_engine(config)
    with tqdm(desc="trips", unit=" pings", disable=None) as bar:
        report = build_all(owner, _owner_sessions(config), tenant_id=tenant_id,
                           on_progress=bar.update)
    click.echo(json.dumps(report, indent=2, default=str))


# ---- processes ------------------------------------------------------------------------------

@main.command("serve")
@click.option("--bind", default=None, help="host:port (default 127.0.0.1:$PORT or 8000)")
@click.option("--workers", default=None, type=int,
              help="gunicorn worker processes (default $WEB_WORKERS, else 2 x cores)")
@click.option("--threads", default=None, type=int,
              help="threads per worker (default $WEB_THREADS, else 1); more than 1 "
                   "runs gunicorn's gthread workers")
def serve(bind, workers, threads):
    """Serve the API with gunicorn (wsgi:app)."""
    bind = bind or f"{os.environ.get('HOST', '127.0.0.1')}:{os.environ.get('PORT', '8000')}"
    _prometheus_dir()
    args = [sys.executable, "-m", "gunicorn", "--chdir", str(ROOT), "--bind", bind,
            *_control_socket(bind), *worker_args(workers, threads),
            "--access-logfile", "-", "--access-logformat",
            '{"gunicorn": "access", "status": %(s)s, "path": "%(U)s", "ms": %(M)s}',
            "--graceful-timeout", "20", "--timeout", "60", "wsgi:app"]
    os.execv(sys.executable, args)


def worker_args(workers: int | None = None, threads: int | None = None) -> list[str]:
    """gunicorn's worker arguments as `govern serve` chooses them (also used by bench/single.py
    to serve its ceiling app under the same worker model)."""
    workers = workers or int(os.environ.get("WEB_WORKERS", 2 * (os.cpu_count() or 1)))
    threads = threads or int(os.environ.get("WEB_THREADS", 1))
    args = ["--workers", str(workers)]
    if threads > 1:
        args += ["--worker-class", "gthread", "--threads", str(threads)]
    return args


def _control_socket(bind: str) -> list[str]:
    """Recent gunicorns (27 here) open a control socket, by default in the home directory:
    put it under var/, one per port (a gunicorn without the setting gets nothing)."""
    from gunicorn.config import KNOWN_SETTINGS

    if not any(s.name == "control_socket" for s in KNOWN_SETTINGS):
        return []
    control = ROOT / "var" / f"gunicorn-{bind.rsplit(':', 1)[-1]}.ctl"
    control.parent.mkdir(parents=True, exist_ok=True)
    return ["--control-socket", str(control)]


def _prometheus_dir() -> None:
    """gunicorn workers are separate processes: let prometheus-client aggregate them."""
    if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        import tempfile

        os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="govern-metrics-")


@main.command("scheduler")
def scheduler():
    """Run the job scheduler (one leader across all instances, by advisory lock)."""
    from govern import scheduler as sched
    from govern.jobs import JOBS

    sched.main(_config(), JOBS)


@main.command("demo")
@click.option("--name", default="Demo Field Services", show_default=True)
@click.option("--days", default=3, show_default=True, type=int)
@click.option("--subjects", default=12, show_default=True, type=int)
def demo(name, days, subjects):
    """Seed a demo tenant with realistic synthetic field-worker movement."""
    from govern.demo import seed_demo

    result = seed_demo(_owner_sessions(_config()), name=name, days=days, n_subjects=subjects)
    click.echo(json.dumps(result, indent=2))


# ---- local development ----------------------------------------------------------------------

def local_cluster():
    from govern.localdb import LocalCluster

    return LocalCluster(ROOT / "var" / "pg", port=int(os.environ.get("GOVERN_PG_PORT", "5432")))


@main.group()
def localdb():
    """The project-local PostGIS cluster under var/ (used when DATABASE_URL is not set)."""


@localdb.command("start")
def localdb_start():
    """Start (initialising if needed) the local cluster and print its DATABASE_URL."""
    cluster = local_cluster()
    cluster.start()
    click.echo(cluster.ensure_database())


@localdb.command("stop")
def localdb_stop():
    """Stop the local cluster."""
    local_cluster().stop()


def citus_cluster():
    from govern.localdb import CitusCluster

    return CitusCluster(ROOT / "var" / "citus")


@localdb.command("citus-start")
def localdb_citus_start():
    """Start (initialising if needed) a local Citus coordinator and two workers under
    var/citus and print the coordinator's DATABASE_URL (needs Citus installed:
    tools/build_citus.sh)."""
    cluster = citus_cluster()
    cluster.start()
    click.echo(cluster.ensure_database())


@localdb.command("citus-stop")
def localdb_citus_stop():
    """Stop the local Citus cluster."""
    citus_cluster().stop()


@main.command("up")
@click.option("--demo/--no-demo", default=True, help="seed the demo on an empty database")
@click.option("--tokens-file", type=click.Path(dir_okay=False, path_type=Path),
              default=ROOT / "var" / "demo-tokens.txt", show_default="var/demo-tokens.txt",
              help="where the demo's tokens are written (mode 0600) when it is seeded")
@click.option("--demo-days", default=3, show_default=True, type=click.IntRange(1, 60))
@click.option("--demo-subjects", default=12, show_default=True, type=click.IntRange(2, 500))
def up(demo, tokens_file, demo_days, demo_subjects):
    """What `make run` does: database, migrations, demo, web and scheduler; Ctrl-C stops all."""
    from govern import migrate

    cluster = None
    if not os.environ.get("DATABASE_URL"):
        cluster = local_cluster()
        click.echo(f"starting the local PostGIS cluster in {cluster.base.relative_to(ROOT)}/")
        cluster.start()
        os.environ["DATABASE_URL"] = cluster.ensure_database()
    config = _config()
    migrate.upgrade(config.database_url)
    click.echo("migrations applied")
    port = os.environ.get("PORT", "8000")
    tokens_text = None
    if demo and _no_tenants(config):
        click.echo("empty database: seeding the demo tenant (govern demo)")
        from govern.demo import seed_demo

        seeded = seed_demo(_owner_sessions(config), days=demo_days, n_subjects=demo_subjects)
        click.echo(f"demo seeded: {seeded['pings']['accepted']} pings, "
                   f"{seeded['trips']['trips']} trips")
        tokens_text = demo_tokens_text(seeded, f"http://127.0.0.1:{port}/console")
        _write_private(tokens_file, tokens_text)
    env = dict(os.environ)
    procs = [
        subprocess.Popen([sys.executable, "-m", "govern.cli", "serve"], env=env),
        subprocess.Popen([sys.executable, "-m", "govern.cli", "scheduler"], env=env),
    ]

    def shutdown(*_):
        for p in procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)

    signal.signal(signal.SIGINT, shutdown)
    signal.signal(signal.SIGTERM, shutdown)
    try:
        if _wait_listening(int(port), procs[0]):
            click.echo(f"govern is serving on http://127.0.0.1:{port} (Ctrl-C stops it)")
            click.echo(_tokens_block(tokens_text, tokens_file))
        while all(p.poll() is None for p in procs):
            time.sleep(0.5)
    finally:
        shutdown()
        for p in procs:
            try:
                p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                p.kill()
        if cluster is not None:
            click.echo("stopping the local PostGIS cluster")
            cluster.stop()


def demo_tokens_text(seeded: dict, console_url: str) -> str:
    """The demo's tokens, one role a line: what `govern up` prints and writes to a file."""
    lines = [f"# govern demo tenant {seeded['tenant_id']}: sign in at {console_url}",
             "# member tokens (role, email, token); each is shown only once, keep this file"]
    for role, token in seeded["tokens"].items():
        lines.append(f"{role:<11} {role + '@demo.example':<24} {token}")
    device = seeded.get("device")
    if device:
        lines.append(f"# a device token (worker-001's phone {device['identifier']}), "
                     "for POST /v1/ingest")
        lines.append(f"{'device':<11} {'worker-001':<24} {device['token']}")
    return "\n".join(lines) + "\n"


def _write_private(path: Path, text: str) -> None:
    """Written with mode 0600 from the start: tokens are never readable by others."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.exists():
        path.unlink()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(text)


def _tokens_block(fresh: str | None, path: Path) -> str:
    where = path.relative_to(ROOT) if path.is_relative_to(ROOT) else path
    rule = "-" * 78
    if fresh:
        return f"{rule}\ndemo tokens (also written to {where}, mode 0600):\n{fresh}{rule}"
    if path.exists():
        return f"{rule}\nthe demo's tokens are in {where} (written when it was seeded)\n{rule}"
    return (f"{rule}\nno demo tokens file at {where}: the database was seeded elsewhere; "
            "mint a token for a member with the API (POST /v1/tokens)\n{rule}")


def _wait_listening(port: int, proc: subprocess.Popen, timeout: float = 180) -> bool:
    """True once /healthz answers on the port; False if the server exited first."""
    import http.client

    deadline = time.monotonic() + timeout
    while proc.poll() is None and time.monotonic() < deadline:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", "/healthz")
            if conn.getresponse().status == 200:
                return True
        except OSError:
            time.sleep(0.2)
    if proc.poll() is None:
        click.echo(f"the web server has not answered /healthz on port {port} yet", err=True)
    return False


def _no_tenants(config: Config) -> bool:
    import psycopg

    from govern.config import libpq_url

    url = libpq_url(config.database_url)
    with psycopg.connect(url) as conn:
        return conn.execute("SELECT NOT EXISTS (SELECT 1 FROM tenants)").fetchone()[0]


if __name__ == "__main__":
    main()
