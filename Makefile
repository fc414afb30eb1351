# govern: `make run` serves it, `make test` tests it. Both set up what is missing first.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
PYTHON ?= python3
# curl and jq for the README's tour, faketime for `make test-instants`, wrk for `make bench`
APT_PACKAGES := postgresql-15 postgresql-15-postgis-3 postgresql-15-hll chromium curl jq faketime wrk

.PHONY: run test test-citus citus test-instants install system-deps lint fmt bench load clean-db console

run: install
	$(VENV)/bin/govern up

test: install
	$(VENV)/bin/ruff check govern tests bench wsgi.py
	$(VENV)/bin/pytest

# Citus 13.2.2 from ../shared/vendor/ into the installed PostgreSQL (skipped when the
# installed citus.so was built from that tarball), then the whole suite against a local
# coordinator and two workers under var/citus (tests/conftest.py: GOVERN_TEST_CITUS).
citus:
	tools/build_citus.sh

test-citus: install citus
	GOVERN_TEST_CITUS=1 $(VENV)/bin/pytest $(PYTEST_ARGS)

# The whole suite once per instant where date arithmetic breaks, under libfaketime.
test-instants: install
	$(PY) -m tests.instants

install: system-deps $(VENV)/.installed

# Debian packages, only when something is missing (needs root or sudo).
system-deps:
	@missing=""; for p in $(APT_PACKAGES); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "install ok installed" || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:$$missing"; \
	  SUDO=""; [ "$$(id -u)" = 0 ] || SUDO=sudo; \
	  $$SUDO apt-get update -q && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -q $$missing; \
	fi

$(VENV)/.installed: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	touch $@

lint:
	$(VENV)/bin/ruff check govern tests bench wsgi.py

fmt:
	$(VENV)/bin/ruff check --fix govern tests bench wsgi.py

# The console's third-party files, from the npm registry into the package (committed, so a
# fresh clone needs no npm): Leaflet, topojson-client and the world-atlas 110m basemap.
VENDOR := govern/console/static/vendor
NPM := console/node_modules
console:
	cd console && npm ci --no-audit --no-fund
	rm -rf $(VENDOR) && mkdir -p $(VENDOR)/leaflet $(VENDOR)/topojson-client $(VENDOR)/world-atlas
	cp -r $(NPM)/leaflet/dist/leaflet.js $(NPM)/leaflet/dist/leaflet.css \
	  $(NPM)/leaflet/dist/images $(NPM)/leaflet/LICENSE $(VENDOR)/leaflet/
	cp $(NPM)/topojson-client/dist/topojson-client.min.js $(NPM)/topojson-client/LICENSE \
	  $(VENDOR)/topojson-client/
	cp $(NPM)/world-atlas/countries-110m.json $(NPM)/world-atlas/LICENSE $(VENDOR)/world-atlas/
	du -sh $(VENDOR)

bench: install
	$(PY) -m bench.run

# A few minutes of devices, analysts and dispatchers against gunicorn, then a noisy tenant
# beside a quiet one with the per-tenant bound on and off, then the soak: 5,000 phones, a fix
# every 10 s each, for 10 minutes (loopback only).
load: install
	$(PY) -m bench.load --write
	$(PY) -m bench.noisy --write
	$(PY) -m bench.soak --write

clean-db:
	-$(VENV)/bin/govern localdb stop
	-$(VENV)/bin/govern localdb citus-stop
	rm -rf var/pg var/citus
