# The two quick-start commands: `make demo` and `make test`. Both set up .venv on first use.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

# `make bench`: CLI start-up, bulk intake and duplicate search beside their raw limits, a web load run, and a bulk fire
# through the server beside local mode (see benchmarks/).
.PHONY: demo test lint bench clean

$(STAMP): setup.cfg setup.py pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

demo: $(STAMP)
	rm -f demo.sqlite demo.sqlite-wal demo.sqlite-shm
	$(BIN)/consultflow --db demo.sqlite demo

test: $(STAMP)
	$(BIN)/python -m pytest

bench: $(STAMP)
	$(BIN)/python benchmarks/startup.py
	$(BIN)/python benchmarks/intake.py $(if $(CONSULTFLOW_BENCH_PG),--pg $(CONSULTFLOW_BENCH_PG))
	$(BIN)/python benchmarks/engines.py --sizes 1000,10000 $(if $(CONSULTFLOW_BENCH_PG),--pg $(CONSULTFLOW_BENCH_PG))
	$(BIN)/python benchmarks/web_load.py $(if $(CONSULTFLOW_BENCH_PG),--pg $(CONSULTFLOW_BENCH_PG))
	$(BIN)/python benchmarks/remote.py --sizes 10000 $(if $(CONSULTFLOW_BENCH_PG),--pg $(CONSULTFLOW_BENCH_PG))

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports

clean:
	rm -rf $(VENV) demo.sqlite demo.sqlite-wal demo.sqlite-shm .pytest_cache .mypy_cache .ruff_cache
