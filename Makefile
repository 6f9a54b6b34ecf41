# memlib study — `make figures` runs the whole study, `make test` the tests. Both set up first.
PROFILE ?= default
PYTHON  ?= python3
VENV    := .venv
PY      := $(VENV)/bin/python
STAMP   := .stamps/setup
export MEMLIB_CACHE ?= $(CURDIR)/.cache/memlib
export PYTHONUNBUFFERED := 1

.PHONY: help setup figures smoke test bench notebooks clean clean-figures

help:            ## list the targets
	@grep -E '^[a-z-]+:.*## ' Makefile | sed 's/:.*## /\t/'

setup: $(STAMP)  ## venv, packages, Fashion-MNIST, offline weights, Jupyter kernel (idempotent)
$(STAMP): pyproject.toml scripts/setup.sh
	PYTHON=$(PYTHON) VENV=$(VENV) bash scripts/setup.sh
	@mkdir -p $(@D) && touch $@

figures: setup   ## run every notebook on params/$(PROFILE).yaml → figures/ (default: 30-60 min on 2 cores)
	$(PY) -m memlib run-notebooks --profile $(PROFILE)

smoke: setup     ## every notebook on the tiny smoke profile (< 5 min) → smoke-out/
	$(PY) -m memlib run-notebooks --profile smoke

test: setup      ## the test suite (pytest; includes the smoke notebooks)
	$(PY) -m pytest -q

bench: setup     ## speed and memory benchmarks → bench/results.md + bench/results.csv
	$(PY) -m bench

notebooks: setup ## regenerate notebooks/*.ipynb from their jupytext twins notebooks/*.py
	$(VENV)/bin/jupytext --quiet --to ipynb --update notebooks/[0-9]*.py

clean:           ## caches and generated outputs (never sources or committed figures)
	rm -rf .cache smoke-out .pytest_cache $(STAMP)
	find . -name __pycache__ -not -path './$(VENV)/*' -prune -exec rm -rf {} +

clean-figures:   ## also delete the committed figures/ (regenerate with make figures)
	rm -rf figures
