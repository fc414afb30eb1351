"""The README's curl tour, run as a reader would paste it, against gunicorn: every output
line it shows (`# …` under a command) must be what the commands print."""

import os
import re
import shutil
import subprocess

import pytest

from tests.conftest import ROOT
from tests.instants import moved_env


def tour() -> tuple[str, list[str]]:
    """The tour's shell blocks joined into one script, and the outputs it promises."""
    text = (ROOT / "README.md").read_text()
    section = text[text.index("## A tour with curl"):text.index("## Console")]
    script = "\n".join(re.findall(r"```sh\n(.*?)```", section, re.S))
    shown = [line[2:] for line in script.splitlines() if line.startswith("# ")]
    return script, shown


def test_the_tour_promises_something():
    script, shown = tour()
    assert len(shown) >= 8 and "curl" in script


def test_the_readme_tour_works_when_copied(gunicorn, database_url):
    for tool in ("bash", "curl", "jq"):
        if shutil.which(tool) is None:
            pytest.skip(f"{tool} is not installed (make install brings it)")
    if not (ROOT / ".venv" / "bin" / "govern").exists():
        pytest.skip("the tour calls .venv/bin/govern, which `make install` creates")
    _, port = gunicorn
    script, shown = tour()
    # in an instants run, `date` tells the moved time too (Python moves itself)
    env = {**os.environ, "PORT": str(port), "DATABASE_URL": database_url,
           **moved_env(commands="date")}
    done = subprocess.run(["bash", "-u", "-c", script], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    assert done.stdout.splitlines() == shown
