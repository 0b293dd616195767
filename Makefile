# Two commands for a new user: `make demo` and `make test`.
# Both bootstrap .venv from uv.lock first; a machine with python3 and make is enough.
PYTHON ?= python3
UV_VERSION ?= 0.13.9
UV := $(shell command -v uv 2>/dev/null || echo .tools/bin/uv)
VENV := .venv
STAMP := $(VENV)/.synced

.PHONY: demo test lint bootstrap clean system-deps

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
PYTEST_WORKERS ?= 2
test: lint system-deps
	$(VENV)/bin/python -m pytest -n $(PYTEST_WORKERS) $(PYTEST_ARGS)

# Style, the floors (import-linter contracts in pyproject.toml) and the types (mypy).
lint: $(STAMP)
	$(VENV)/bin/ruff check . && $(VENV)/bin/ruff format --check .
	$(VENV)/bin/lint-imports
	$(VENV)/bin/mypy

clean:
	rm -rf $(VENV) .tools demo
