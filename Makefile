# ssd_zoo developer commands.  `make test` is what CI runs (.ci/run).
PY      ?= python3
VENV    := .venv
VENVREF := .venv-ref
PYTEST_ARGS ?= -n 2

.PHONY: setup setup-main setup-ref test test-fast demo tables clean

setup: setup-main setup-ref

setup-main: $(VENV)/.stamp
$(VENV)/.stamp: requirements.txt setup.py
	$(PY) -m venv $(VENV)
	$(VENV)/bin/pip install -q -r requirements.txt
	$(VENV)/bin/pip install -q --no-deps -e .
	touch $@

setup-ref: $(VENVREF)/.stamp
$(VENVREF)/.stamp: requirements-ref.txt
	$(PY) -m venv $(VENVREF)
	$(VENVREF)/bin/pip install -q -r requirements-ref.txt
	touch $@

# Full suite, parity tests included (they need .venv-ref, so `setup` builds both).
test: setup
	SSD_ZOO_REQUIRE_REF=1 $(VENV)/bin/python -m pytest $(PYTEST_ARGS) tests

# Without the reference runtimes (parity tests skip with a reason).
test-fast: setup-main
	$(VENV)/bin/python -m pytest $(PYTEST_ARGS) tests -m "not parity"

# Offline: the bundled face SSD (ssd_zoo/assets) on demo/images -> out/demo/
demo: setup-main
	$(VENV)/bin/python demo/demo_ssd.py --out out/demo

# README tables + model_cards/ from ssd_zoo/zoo.py and results/ (`--check` runs in make test)
tables: setup-main
	$(VENV)/bin/python benchmarks/make_tables.py

clean:
	rm -rf .cache .pytest_cache
