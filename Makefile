# One-command entry points. Each target bootstraps .venv on a fresh machine first.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export NUMBA_CACHE_DIR ?= $(CURDIR)/.numba_cache
WORLD ?= demo-world
PEOPLE ?= 20000
ITEMS ?= 5000
SEED ?= 0
REPLAY_EVENTS ?= 100000

.PHONY: all venv demo test test-fast test-nojit bench typecheck clean

all: test

$(STAMP): pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e ".[dev]"
	touch $(STAMP)

venv: $(STAMP)

demo: $(STAMP)
	$(BIN)/decisioner warmup
	$(BIN)/decisioner generate --people $(PEOPLE) --items $(ITEMS) --seed $(SEED) --out $(WORLD)
	$(BIN)/decisioner simulate --world $(WORLD) --seed $(SEED)
	$(BIN)/decisioner replay $(WORLD)/events.jsonl --world $(WORLD) --seed $(SEED) --max-events $(REPLAY_EVENTS)

test: $(STAMP)
	$(BIN)/python -m pytest -q -p no:cacheprovider tests
	$(BIN)/python -m pytest -q -p no:cacheprovider --doctest-modules src/decisioner
	NUMBA_DISABLE_JIT=1 $(BIN)/python -m pytest -q -p no:cacheprovider tests/kernels
	$(BIN)/python -m pytest -q -p no:cacheprovider benchmarks --benchmark-disable
	$(BIN)/mypy

bench: $(STAMP)
	$(BIN)/python -m pytest benchmarks --benchmark-only --benchmark-columns=min,median,mean,max,rounds
	$(BIN)/decisioner bench --profiles 1000000 --items 10000

typecheck: $(STAMP)
	$(BIN)/mypy

clean:
	rm -rf $(VENV) .numba_cache $(WORLD) .pytest_cache .benchmarks
