# Every target installs what it needs into .venv first (a fresh machine has only Python).
VENV   ?= .venv
PY     := $(VENV)/bin/python
BIN    := $(VENV)/bin
# a CPU build of torch; a bare `torch` would pull a multi-GB CUDA build
TORCH  ?= torch==2.13.0

.PHONY: install demo analyze test lint format docs bench clean

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q $(TORCH)
	$(PY) -m pip install -q -e '.[dev,compressed,ray,lm-eval,datasets]'  # every extra: their tests always run
	touch $@

demo: install            ## the main job on the embedded default checkpoint
	$(BIN)/prunecard demo --force

analyze: install         ## measure the embedded default checkpoint
	$(BIN)/prunecard analyze

test: install            ## the whole test suite, slow end-to-end tests included
	$(PY) -m pytest -q

lint: install            ## ruff, mypy (analyzer/), and the import rules of the README's architecture section
	$(BIN)/ruff check analyzer tests benchmarks scripts
	$(BIN)/ruff format --check analyzer tests benchmarks scripts
	$(BIN)/mypy
	$(BIN)/lint-imports

format: install
	$(BIN)/ruff format analyzer tests benchmarks scripts

docs: install            ## the project's documentation site with an example report, into site/
	$(PY) scripts/build_docs.py

bench: install           ## speed and memory benchmarks (minutes; figures printed side by side)
	$(PY) benchmarks/analyze_speed.py

clean:
	rm -rf $(VENV) build dist site *.egg-info
