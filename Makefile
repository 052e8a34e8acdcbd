# The two quick-start commands: `make demo` and `make test`. Each sets up its virtualenv on first use:
# the demo's (.venv-demo) holds consultflow's core only (`pip install consultflow`: the CLI on SQLite),
# the tests' (.venv) every extra (`.[all]`) and the test, lint and docs groups (pyproject.toml).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DEMO_VENV := .venv-demo
DEMO_STAMP := $(DEMO_VENV)/.installed

# `make bench`: CLI start-up, bulk intake and duplicate search beside their raw limits, a web load run, and a bulk fire
# through the server beside local mode (see benchmarks/).
.PHONY: demo test test-fast lint docs bench clean

$(STAMP): setup.cfg setup.py pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[all]' --group test --group lint --group docs -c constraints.txt
	touch $(STAMP)

$(DEMO_STAMP): setup.cfg setup.py pyproject.toml
	$(PYTHON) -m venv $(DEMO_VENV)
	$(DEMO_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(DEMO_VENV)/bin/python -m pip install --quiet -e .
	touch $(DEMO_STAMP)

demo: $(DEMO_STAMP)
	rm -f demo.sqlite demo.sqlite-wal demo.sqlite-shm
	$(DEMO_VENV)/bin/consultflow --db demo.sqlite demo

# Bytecode is written even where PYTHONDONTWRITEBYTECODE is set (this machine sets it): the suite
# starts hundreds of consultflow processes, and each would compile the package from source again
# (a quarter of a CLI command's start), as would each worker's assertion rewriting.
PYTEST := env -u PYTHONDONTWRITEBYTECODE $(BIN)/python -m pytest

test: $(STAMP)
	$(PYTEST) -n auto --dist worksteal

# The fast lane while you work: everything but the tests marked slow (real servers, browsers,
# several hosts, process storms). `make test` (and CI) runs them all.
test-fast: $(STAMP)
	$(PYTEST) -n auto --dist worksteal -m 'not slow'

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

# The documentation site (mkdocs.yml, docs/) into build/site; --strict fails it on any broken link or anchor.
docs: $(STAMP)
	$(BIN)/mkdocs build --strict --site-dir build/site

clean:
	rm -rf $(VENV) $(DEMO_VENV) demo.sqlite demo.sqlite-wal demo.sqlite-shm .pytest_cache .mypy_cache .ruff_cache
