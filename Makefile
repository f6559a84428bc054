# The two commands a new user needs: `make run` and `make test` (see README.md).
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# apt-get needs root; use sudo when we are not root and it exists.
SUDO := $(shell [ "$$(id -u)" = 0 ] || command -v sudo)
DEV_ENV := DEBUG=1

.PHONY: run test test-sqlite test-postgres lint bench system-deps runtime-deps lock clean help

help:
	@echo "make run    - set up (venv, migrations, demo trial and users) and serve http://127.0.0.1:8000"
	@echo "make test   - install what the tests need and run the whole suite (SQLite and PostgreSQL)"
	@echo "make bench  - benchmarks (allocation, worklist, weekly SMS and webhook, concurrent enrollment with a"
	@echo "              Redis outage, synthetic trials of 1,000/10,000/100,000: pages, dashboard, export)"
	@echo "make worker - Celery worker with beat (daily digests, reminders) against Redis"

$(STAMP): requirements.lock requirements-dev.lock
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements-dev.lock
	touch $(STAMP)

venv: $(STAMP)

run: $(STAMP) runtime-deps
	$(DEV_ENV) $(BIN)/python manage.py migrate --no-input
	$(DEV_ENV) $(BIN)/python manage.py seed_demo
	@echo "Serving on http://127.0.0.1:8000 (Ctrl-C to stop)"
	$(DEV_ENV) $(BIN)/python manage.py runserver 127.0.0.1:8000

# Machine libraries the product itself loads: Cairo (CairoSVG draws the CONSORT PDF with it)
# and a sans-serif font for the diagram's text.
runtime-deps:
	@missing=""; \
	{ ldconfig -p || /sbin/ldconfig -p; } 2>/dev/null | grep -q 'libcairo\.so\.2 ' || missing="$$missing libcairo2"; \
	[ -e /usr/share/fonts/truetype/dejavu/DejaVuSans.ttf ] || missing="$$missing fonts-dejavu-core"; \
	if [ -n "$$missing" ]; then \
	  echo "Installing:$$missing"; \
	  $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq $$missing; \
	fi

# Machine packages the tests drive for real: Debian's Chromium (Playwright cannot download
# browsers here) and the PostgreSQL server binaries for the throwaway test cluster.
system-deps: runtime-deps
	@missing=""; \
	command -v chromium >/dev/null 2>&1 || missing="$$missing chromium"; \
	ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || command -v initdb >/dev/null 2>&1 || missing="$$missing postgresql"; \
	command -v redis-server >/dev/null 2>&1 || missing="$$missing redis-server"; \
	if [ -n "$$missing" ]; then \
	  echo "Installing:$$missing"; \
	  $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq $$missing; \
	fi

# ruff (with C901, cyclomatic complexity at most 20) and the function-length check (80 lines).
lint: $(STAMP) runtime-deps
	$(BIN)/ruff check .
	env -u DATABASE_URL EXPECT_DATABASE_VENDOR=sqlite $(BIN)/pytest -q -p no:cacheprovider tests/test_function_length.py
	$(BIN)/lint-imports
	$(DEV_ENV) $(BIN)/python manage.py makemigrations --check --dry-run

test-sqlite: $(STAMP) system-deps
	env -u DATABASE_URL EXPECT_DATABASE_VENDOR=sqlite $(BIN)/pytest

# A throwaway PostgreSQL cluster unless DATABASE_URL is given; failing to start it fails.
test-postgres: $(STAMP) system-deps
	$(BIN)/python -m tests.pgcluster -- $(BIN)/pytest

test: lint test-sqlite test-postgres

bench: $(STAMP) system-deps
	$(BIN)/python -m tests.pgcluster -- bash -c '\
	  export SECRET_KEY=bench-only-not-secret TRIALDESK_DEVTOOLS=1; \
	  $(BIN)/python manage.py migrate --no-input -v0 && \
	  $(BIN)/python manage.py bench_allocation --n 10000 --write docs/PERFORMANCE.md && \
	  $(BIN)/python manage.py bench_worklist --sizes 1000 100000 --write docs/PERFORMANCE.md && \
	  $(BIN)/python manage.py bench_sms --sizes 1000 10000 --webhook --write docs/PERFORMANCE.md && \
	  $(BIN)/python manage.py bench_enroll --clients 8 --seconds 20 --fault --write docs/PERFORMANCE.md && \
	  $(BIN)/python manage.py bench_scale --sizes 1000 10000 100000 --write docs/PERFORMANCE.md'

# Regenerate the lock files from pyproject.toml's ranges (newest allowed versions).
lock:
	rm -rf /tmp/trial-lock && $(PYTHON) -m venv /tmp/trial-lock
	/tmp/trial-lock/bin/pip install --quiet . && /tmp/trial-lock/bin/pip freeze --exclude trialdesk > requirements.lock
	/tmp/trial-lock/bin/pip install --quiet ".[dev]" && /tmp/trial-lock/bin/pip freeze --exclude trialdesk > requirements-dev.lock
	rm -rf build *.egg-info
	rm -rf /tmp/trial-lock

clean:
	rm -rf $(VENV) db.sqlite3 .test-db.sqlite3 staticfiles test-artifacts .pytest_cache .hypothesis

# --- Celery worker (issue 3 §4) -------------------------------------------------------------
# A worker with the beat scheduler embedded (-B), which sends the daily digests and visit
# reminders (settings.CELERY_BEAT_SCHEDULE). It needs Redis: CELERY_BROKER_URL must point at
# it, default redis://127.0.0.1:6379/0 here (start one with `redis-server`), and `make run`
# must then see the same CELERY_BROKER_URL, or the web process runs tasks itself. -B suits one
# machine; with several workers run a single `celery -A trial beat` instead.
.PHONY: worker
worker: $(STAMP) runtime-deps
	CELERY_BROKER_URL=$${CELERY_BROKER_URL:-redis://127.0.0.1:6379/0} $(DEV_ENV) \
	  $(BIN)/celery -A trial worker -B --loglevel=info --schedule $(VENV)/celerybeat-schedule
