# One entry point per task; every target builds .venv itself from a fresh clone.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# the lake profile: DuckDB 1.4 with the DuckLake extensions, in its own environment
LAKE_VENV := .venv-lake
LAKE_STAMP := $(LAKE_VENV)/.installed
DATA ?= data
export DAGSTER_HOME ?= $(CURDIR)/$(DATA)/dagster_home

.PHONY: install compile install-lake bench-lake system-deps demo test ui screenshots bench bench-scale calendar hostile lint shape format clean

# uv makes both environments (a pinned release, put in build/ by pip): from PyPI, to
# exactly the versions constraints*.txt pin; it reads no pip configuration, and none of
# its own (--no-config); bytecode compiled at install, as pip does: where
# PYTHONDONTWRITEBYTECODE is set (this machine, CI), Python never keeps what it compiles,
# and every process would compile each module it imports (the suite: 704 s, not 532 s).
# The venvs have no pip:
# `$(UV) pip install --python .venv/bin/python PACKAGE` adds one
UV_VERSION := 0.13.9
UV_DIR := build/uv-$(UV_VERSION)
UV := $(UV_DIR)/bin/uv
UV_INSTALL := $(UV) pip install --no-config --quiet --compile-bytecode

$(UV):
	$(PYTHON) -m pip install --isolated --quiet --disable-pip-version-check \
		--root-user-action=ignore --target $(UV_DIR) uv==$(UV_VERSION)

install: $(STAMP)

# The project's own modules compiled (compileall skips those already current), before
# every target that runs them: an editable install leaves them out, and with
# PYTHONDONTWRITEBYTECODE every process would compile what it imports again (0.2 s of CPU
# each: the suite's processes, and a no-op `b2b run` at `large`: 3.04 s -> 2.74 s)
PROJECT_PACKAGES := b2b_platform b2b_common source_db generators b2b_platform_tests
compile: $(STAMP)
	@$(BIN)/python -m compileall -q -j 0 $(PROJECT_PACKAGES)

$(STAMP): pyproject.toml constraints.txt | $(UV)
	$(UV) venv --no-config --quiet --clear --no-python-downloads --python $(PYTHON) $(VENV)
	$(UV_INSTALL) --python $(BIN)/python -c constraints.txt -e '.[dev]'
	touch $(STAMP)

install-lake: $(LAKE_STAMP)

$(LAKE_STAMP): pyproject.toml constraints-lake.txt | $(UV)
	$(UV) venv --no-config --quiet --clear --no-python-downloads --python $(PYTHON) $(LAKE_VENV)
	$(UV_INSTALL) --python $(LAKE_VENV)/bin/python -c constraints-lake.txt -e '.[dev,lake,lake-test]'
	touch $(LAKE_STAMP)

demo: compile
	$(BIN)/b2b generate --scale small --out $(DATA)
	$(BIN)/b2b run
	$(BIN)/b2b report
	@echo "Run log, quarantine and files: .venv/bin/b2b status"
	@echo "Dagster UI: make ui, then open http://127.0.0.1:3000"

# Debian's packages the tests need: Chromium for the page's browser tests, logrotate to
# rotate logs as servers do (as root; nothing is installed when all are there)
system-deps:
	@command -v chromium >/dev/null && command -v chromedriver >/dev/null && \
		PATH="$$PATH:/usr/sbin" command -v logrotate >/dev/null || \
		{ apt-get update -qq && apt-get install -y -qq chromium chromium-driver logrotate; }

# The default environment's tests on two workers (pytest-xdist; the tests sharing
# PostgreSQL's `test` database keep to one), and beside them the lake profile (DuckDB 1.4
# + DuckLake) installed, then its tests run on one more worker: the suite is CPU-bound,
# yet its daemon and kill tests leave a core idle while they wait, which the lake's
# tests fill (their writers' bounds hold on the loaded machine: docs/testing.md). The
# lake's output is printed when both are done.
# CI=1 on any machine: a missing PostgreSQL or Chromium fails the tests needing it
# The tests' temporary files (TMPDIR, so pytest's tmp_path, the warehouses, Dagster's
# SQLite storage) go to a fresh directory on a RAM file system when one has room
# (/dev/shm, 4 GiB free at least), removed at the end: their syncs there cost nothing
# (the suite's two longest builds: 138 s -> 120 s, docs/testing.md).
TEST_WORKERS ?= 2
LAKE_TEST_WORKERS ?= 1
TEST_TMP_PARENT ?= $(shell [ -w /dev/shm ] && [ "$$(df -P -k /dev/shm | awk 'NR==2 {print $$4}')" -ge 4194304 ] && echo /dev/shm || echo /tmp)
test:
	@$(MAKE) --no-print-directory -s -j2 compile system-deps
	@tmp=$$(mktemp -d -p $(TEST_TMP_PARENT) b2b-test.XXXXXX) || exit 1; lake=; \
	trap 'kill $$lake 2>/dev/null; rm -rf "$$tmp"' EXIT; \
	echo "test files in $$tmp; the lake profile's tests run beside the others"; \
	mkdir "$$tmp/default" "$$tmp/lake"; \
	{ $(MAKE) --no-print-directory -s install-lake && \
	  TMPDIR=$$tmp/lake CI=1 $(LAKE_VENV)/bin/pytest -q -p no:cacheprovider \
		-n $(LAKE_TEST_WORKERS) --dist loadgroup -m lake; } >"$$tmp/lake.log" 2>&1 & lake=$$!; \
	TMPDIR=$$tmp/default CI=1 $(BIN)/pytest -q -n $(TEST_WORKERS) --dist loadgroup -m "not lake"; \
	status=$$?; wait $$lake; lake_status=$$?; lake=; \
	echo "--- the lake profile's tests (.venv-lake):"; cat "$$tmp/lake.log"; \
	[ $$status -eq 0 ] && [ $$lake_status -eq 0 ]

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/python -m b2b_platform_tests.shape

# the code's shape against its goals (import layers and cycles between packages, between
# b2b_platform's modules and between the packages of lib/ and defs/, private Dagster
# imports, SQL f-strings pasting other than quoted names, constants and
# lib/warehouse/sql.py's fragments); exits 1 when a goal is unmet
shape: $(STAMP)
	$(BIN)/python -m b2b_platform_tests.shape

format: $(STAMP)
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

ui: compile
	mkdir -p $(DAGSTER_HOME)
	test -f $(DAGSTER_HOME)/dagster.yaml || cp b2b_platform/dagster.dev.yaml $(DAGSTER_HOME)/dagster.yaml
	VIRTUAL_ENV=$(CURDIR)/$(VENV) PATH=$(CURDIR)/$(BIN):$$PATH $(BIN)/dg dev --host 127.0.0.1 --port 3000

# the README's two pictures (the HTML report, a report asset in the UI), made again
screenshots: compile system-deps
	$(BIN)/python -m b2b_platform_tests.screenshots

bench: compile
	@command -v goaccess >/dev/null || { apt-get update -qq && apt-get install -y -qq goaccess; }
	$(BIN)/python -m b2b_platform_tests.bench
	@if [ -n "$(BENCH_SCALES)" ]; then $(MAKE) --no-print-directory bench-scale; fi

# full build, no-op refresh and one new day per scale (BENCH_SCALES, default small large [xlarge])
bench-scale: compile
	$(BIN)/python -m b2b_platform_tests.bench_scale

# the `large` set built into a warehouse file and into a lake, and a year of web logs
# loaded into a lake by 1 and by 2 writers (PostgreSQL on 127.0.0.1:5432)
bench-lake: compile $(LAKE_STAMP)
	$(BIN)/python -m b2b_platform_tests.bench_lake

# the nightly refresh replayed day by day against clean builds (a month's end, a year's
# end, the real clock), and make demo's commands with the clock on the calendar's edges
calendar: compile
	$(BIN)/python -m b2b_platform_tests.moving_calendar --dir $(DATA)/calendar replay 2026-11-27 2026-12-04
	$(BIN)/python -m b2b_platform_tests.moving_calendar --dir $(DATA)/calendar replay 2026-12-29 2027-01-03
	$(BIN)/python -m b2b_platform_tests.moving_calendar --dir $(DATA)/calendar replay 2026-11-28 2026-12-03 --clock
	$(BIN)/python -m b2b_platform_tests.moving_calendar --dir $(DATA)/calendar demo-days \
		2026-11-01 2026-11-02 2026-11-07 2026-11-15 2026-11-28 2026-11-30 2026-12-31 2027-01-01 2028-02-29

hostile: compile
	$(BIN)/python -m b2b_platform_tests.hostile_corpus measure

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
