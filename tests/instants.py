"""Run the suite with the wall clock moved to the instants where date arithmetic breaks.

`make test-instants` (CI runs it after `make test`): for each instant below, the suite (all
but the two parts named in NOT_MOVED) runs with the wall clock set to that instant at the
start of the run and ticking from there, for the tests and every Python process they start
(time-machine, loaded through tests/instants_site/sitecustomize.py) and for the PostgreSQL
cluster the suite starts and the shell tools the README tour calls (libfaketime, Debian's
`faketime` package). All of them move by one offset, so Python and the database agree on
"now"; monotonic clocks, sleeps and timeouts stay real. Each run passes at its instant or
the command fails, naming it.

    python -m tests.instants            # every instant
    python -m tests.instants leap-day   # one, by name
    python -m tests.instants -- -x tests/domain   # extra pytest arguments after --
"""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
import time
from pathlib import Path

UTC = dt.UTC
OFFSET_VAR = "GOVERN_TEST_CLOCK_OFFSET"  # seconds the wall clock is moved by, during a run

# name: (instant in UTC, time zone for the processes)
INSTANTS: dict[str, tuple[dt.datetime, str]] = {
    # the first day of a month that starts on a Monday: last week and last month overlap
    "monday-month-start": (dt.datetime(2027, 3, 1, 0, 0, 30, tzinfo=UTC), "UTC"),
    # half an hour before a new year: day, week, month and year all turn during the run
    "new-years-eve": (dt.datetime(2026, 12, 31, 23, 30, tzinfo=UTC), "UTC"),
    "leap-day": (dt.datetime(2028, 2, 29, 12, 0, tzinfo=UTC), "UTC"),
    # half a minute before Europe/Berlin moves its clocks forward (01:00 UTC), and back
    "berlin-spring-forward": (dt.datetime(2027, 3, 28, 0, 59, 30, tzinfo=UTC), "Europe/Berlin"),
    "berlin-fall-back": (dt.datetime(2027, 10, 31, 0, 59, 30, tzinfo=UTC), "Europe/Berlin"),
    # half a minute before New York springs forward (07:00 UTC)
    "new-york-spring-forward": (dt.datetime(2027, 3, 14, 6, 59, 30, tzinfo=UTC),
                                "America/New_York"),
    # half a minute before a UTC midnight: the day turns while tests run
    "utc-midnight": (dt.datetime(2027, 6, 15, 23, 59, 30, tzinfo=UTC), "UTC"),
}


def libfaketime() -> str:
    """libfaketime of the Debian package, wherever the architecture puts it."""
    files = subprocess.run(["dpkg", "-L", "libfaketime"], capture_output=True, text=True,
                           check=False).stdout.split()
    found = [f for f in files if f.endswith("/libfaketime.so.1")]
    if not found:
        sys.exit("libfaketime is not installed (apt-get install faketime)")
    return found[0]


def moved_env(commands: str | None = None) -> dict:
    """Environment that moves a non-Python program's clock by this run's offset ({} outside
    an instants run). `commands`: only these programs (comma-separated) are moved."""
    offset = os.environ.get(OFFSET_VAR)
    if not offset:
        return {}
    # monotonic clocks stay real here as in Python: timeouts and waits keep their length
    env = {"LD_PRELOAD": libfaketime(), "FAKETIME": f"{float(offset):+.0f}",
           "FAKETIME_DONT_FAKE_MONOTONIC": "1"}
    if commands:
        env["FAKETIME_ONLY_CMDS"] = commands
    return env


# Left out of the instants runs: the console's browser tests (Chromium keeps the real clock:
# neither time-machine nor libfaketime reaches it) and the schemathesis fuzz (generated
# inputs against the schema; no date arithmetic of ours). Both run in `make test`.
NOT_MOVED = ["--ignore=tests/e2e", "--ignore=tests/fuzz"]


def run_at(name: str, pytest_args: list[str]) -> int:
    at, tz = INSTANTS[name]
    offset = round(at.timestamp() - time.time())
    site = str(Path(__file__).resolve().parent / "instants_site")
    env = {**os.environ, OFFSET_VAR: str(offset), "TZ": tz, "GOVERN_TEST_INSTANT": name,
           "PYTHONPATH": os.pathsep.join(p for p in (site, os.environ.get("PYTHONPATH")) if p)}
    print(f"== {name}: wall clock at {at.isoformat()} (TZ={tz}), pytest {' '.join(pytest_args)}",
          flush=True)
    started = time.monotonic()
    # time_machine, also a pytest plugin, is imported before pytest starts (sitecustomize)
    quiet = ["-W", "ignore::pytest.PytestAssertRewriteWarning"]
    rc = subprocess.run([sys.executable, "-m", "pytest", *quiet, *NOT_MOVED, *pytest_args],
                        env=env, check=False).returncode
    print(f"== {name}: {'passed' if rc == 0 else f'FAILED (exit {rc})'} in "
          f"{time.monotonic() - started:.0f} s", flush=True)
    return rc


def main(argv: list[str]) -> int:
    names, extra = argv, []
    if "--" in argv:
        i = argv.index("--")
        names, extra = argv[:i], argv[i + 1:]
    for n in names:
        if n not in INSTANTS:
            sys.exit(f"unknown instant {n!r}; known: {', '.join(INSTANTS)}")
    failed = [n for n in names or list(INSTANTS) if run_at(n, extra) != 0]
    if failed:
        print(f"failed at: {', '.join(failed)}", flush=True)
        return 1
    print(f"passed at every instant: {', '.join(names or INSTANTS)}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
