# Two commands for a new user: `make demo` and `make test`.
# Both bootstrap .venv from uv.lock first; a machine with python3 and make is enough.
PYTHON ?= python3
UV_VERSION ?= 0.13.9
UV := $(shell command -v uv 2>/dev/null || echo .tools/bin/uv)
VENV := .venv
STAMP := $(VENV)/.synced

# Python writes the bytecode of what it imports (the venv's own is not compiled by `uv sync`). A
# machine whose environment says PYTHONDONTWRITEBYTECODE=1 (this one does) otherwise has every Python
# process compile Prefect, pandas, SQLAlchemy and GX again: each xdist worker, each Prefect server and
# each CLI or flow subprocess of the suite, about 8 CPU-s each.
unexport PYTHONDONTWRITEBYTECODE

.PHONY: demo test lint bootstrap clean system-deps bytecode

bootstrap: $(STAMP)

# uv into .tools/ with the host's pip when it has one (no virtualenv to make: making one, with the
# pip it bundles, was most of this step), else in a virtualenv of its own
.tools/bin/uv:
	$(PYTHON) -m pip install --quiet --disable-pip-version-check --target .tools "uv==$(UV_VERSION)" 2>/dev/null \
	  || { rm -rf .tools && $(PYTHON) -m venv .tools && .tools/bin/pip install --quiet "uv==$(UV_VERSION)"; }

$(STAMP): pyproject.toml uv.lock $(if $(filter .tools/bin/uv,$(UV)),.tools/bin/uv)
	UV_PROJECT_ENVIRONMENT=$(VENV) $(UV) sync --locked --python $(PYTHON) --quiet
	touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/oafin demo $(ARGS)

# The HTML report test renders report.html in headless Chromium (Debian's package).
# The PostgreSQL tests use the server at OAFIN_TEST_PG_URL, or start a throwaway one from Debian's
# postgresql binaries (/usr/lib/postgresql/<ver>/bin, not on the PATH): installed here when missing.
system-deps:
	@command -v chromium >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ]; then \
	    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null); \
	  else echo "make test needs chromium: sudo apt-get install chromium" >&2; exit 1; fi; }
	@ls /usr/lib/postgresql/*/bin/pg_ctl >/dev/null 2>&1 || command -v pg_ctl >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ]; then \
	    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null); \
	  else echo "no PostgreSQL binaries: the PostgreSQL tests need a server at OAFIN_TEST_PG_URL" \
	    "(or: sudo apt-get install postgresql)" >&2; fi; }

# Two pytest-xdist workers (this machine has 2 cores): each its own Prefect harness, PREFECT_HOME
# and PostgreSQL schemas (tests/test_xdist_isolation.py). PYTEST_WORKERS=0 runs in one process.
# Lint, the system packages and the bytecode run side by side first (mypy keeps one core busy for
# about 40 s on a clean clone; the other writes the bytecode the workers then read); any failure
# stops before pytest, as lint did when it ran alone.
# --dist worksteal: a worker that runs out takes half of the other's queue. The default (load) hands
# each worker a quarter of the suite up front and never takes it back: with the long modules first
# (tests/conftest.py) one worker ran 15 queued tests for minutes while the other had finished.
PYTEST_WORKERS ?= 2
test: $(STAMP)
	@$(MAKE) --no-print-directory -j 3 --output-sync=target lint system-deps bytecode
	$(VENV)/bin/python -m pytest -n $(PYTEST_WORKERS) $(if $(filter 0,$(PYTEST_WORKERS)),,--dist worksteal) $(PYTEST_ARGS)

# The bytecode of everything the suite imports: its collection, and the Prefect server and flow engine
# its workers and subprocesses start. Collection errors fail here already.
bytecode: $(STAMP)
	@$(VENV)/bin/python -m pytest --collect-only -q -p no:cacheprovider >$(VENV)/collect.log 2>&1 \
	  || { cat $(VENV)/collect.log; exit 1; }
	@$(VENV)/bin/python -c "import prefect.server.api.server, prefect.flow_engine, oafin.cli"
	@echo "bytecode written for $$(tail -n 1 $(VENV)/collect.log)"

# Style, the floors (import-linter contracts in pyproject.toml) and the types (mypy).
lint: $(STAMP)
	$(VENV)/bin/ruff check . && $(VENV)/bin/ruff format --check .
	$(VENV)/bin/lint-imports
	$(VENV)/bin/mypy

clean:
	rm -rf $(VENV) .tools demo
