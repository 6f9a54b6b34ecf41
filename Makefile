# memlib study — `make figures` runs the whole study, `make test` the tests. Both set up first.
PROFILE ?= default
NB      ?=
PARAMS  ?=
PYTHON  ?= python3
VENV    := .venv
PY      := $(VENV)/bin/python
STAMP   := .stamps/setup
export MEMLIB_CACHE ?= $(CURDIR)/.cache/memlib
export PYTHONUNBUFFERED := 1

.PHONY: help setup figures smoke test test-float32 bench notebooks clean clean-figures

help:            ## list the targets
	@grep -E '^[a-z0-9-]+:.*## ' Makefile | sed 's/:.*## /\t/'

setup: $(STAMP)  ## venv, packages, Fashion-MNIST, offline weights, Jupyter kernel (idempotent)
$(STAMP): pyproject.toml scripts/setup.sh
	PYTHON=$(PYTHON) VENV=$(VENV) bash scripts/setup.sh
	@mkdir -p $(@D) && touch $@

figures: setup   ## every notebook on params/$(PROFILE).yaml → figures/; NB=03 PARAMS=my.yaml: one notebook, your values → out/ (docs/tweaking.md)
	$(PY) -m memlib run-notebooks --profile $(PROFILE) $(if $(PARAMS),--params $(PARAMS)) $(NB)

smoke: setup     ## every notebook on the tiny smoke profile (< 5 min) → smoke-out/
	$(PY) -m memlib run-notebooks --profile smoke

test: setup      ## the test suite (pytest; includes the smoke notebooks), then the encoder tests on the float32 path
	@$(PY) -m memlib.machine --precision
	$(PY) -m pytest -q --durations=15
	@MEMLIB_NATIVE_BF16=0 $(PY) -m memlib.machine --precision
	MEMLIB_NATIVE_BF16=0 $(PY) -m pytest -q tests/test_encoders.py tests/test_features.py

test-float32: setup  ## the whole suite on the float32 path of a CPU without native bf16 (about 2x as long)
	@MEMLIB_NATIVE_BF16=0 $(PY) -m memlib.machine --precision
	MEMLIB_NATIVE_BF16=0 $(PY) -m pytest -q

bench: setup     ## speed and memory benchmarks → bench/results.md + bench/results.csv
	$(PY) -m bench

notebooks: setup ## regenerate notebooks/*.ipynb from their jupytext twins notebooks/*.py
	$(VENV)/bin/jupytext --quiet --to ipynb --update notebooks/[0-9]*.py

clean:           ## caches and generated outputs (never sources or committed figures)
	rm -rf .cache smoke-out .pytest_cache $(STAMP)
	find . -name __pycache__ -not -path './$(VENV)/*' -prune -exec rm -rf {} +

clean-figures:   ## also delete the committed figures/ (regenerate with make figures)
	rm -rf figures
