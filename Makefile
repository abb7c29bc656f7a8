# One-command entry points. Each target bootstraps .venv on a fresh machine first.
# `make demo` and `make test` are the two first-class commands; .venv installs exactly the
# versions in requirements.lock (`make lock` refreshes it), so a fresh machine tests what we tested.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
LOCK := requirements.lock
export NUMBA_CACHE_DIR ?= $(CURDIR)/.numba_cache
WORLD ?= demo-world
PEOPLE ?= 20000
ITEMS ?= 5000
SEED ?= 0
REPLAY_EVENTS ?= 100000

# `make test-latest`: the newest versions pyproject.toml allows, in a venv of its own, with a
# numba cache of its own (a different numba would invalidate and rewrite .numba_cache's entries).
LATEST_VENV := .venv-latest
LATEST_CACHE := $(CURDIR)/.numba_cache_latest
# `make lock`: the lock tool lives in a throwaway venv; `make test` never needs it.
LOCK_VENV := .venv-lock
UV_VERSION ?= 0.13.9
# `make lock` moves every pin to the newest allowed; `make lock LOCK_FLAGS=` only adds what a
# pyproject.toml change needs, and `make lock LOCK_FLAGS="-P msgspec"` moves one package.
LOCK_FLAGS ?= --upgrade

.PHONY: all venv system demo test test-fast test-latest test-nojit lint lock bench typecheck clean

all: test

# A new or changed lock rebuilds .venv from scratch (--clear), so nothing outside the lock
# lingers. The lock has hashes, so pip checks every download; the project itself goes on top
# without dependencies, built by the locked setuptools (no build isolation, no unpinned fetch).
# pip stays the one ensurepip gave this Python: upgrading it would be the one unpinned install.
$(STAMP): $(LOCK) pyproject.toml
	$(PY) -m venv --clear $(VENV)
	$(BIN)/python -m pip install --quiet --require-hashes -r $(LOCK)
	$(BIN)/python -m pip install --quiet --no-deps --no-build-isolation -e .
	touch $(STAMP)

venv: $(STAMP)

# Servers and browsers the tests start themselves on 127.0.0.1 (redis-server for the shared
# state backend, chromium for the HTML report), from Debian's packages, installed once when
# missing (root, or sudo). `make demo` needs neither.
SYSTEM_PACKAGES := redis-server:redis-server chromium:chromium
system:
	@missing=""; for pair in $(SYSTEM_PACKAGES); do command -v $${pair%%:*} >/dev/null || missing="$$missing $${pair#*:}"; done; \
	if [ -n "$$missing" ]; then \
	  sudo=""; [ "$$(id -u)" = 0 ] || sudo=sudo; \
	  echo "installing$$missing"; $$sudo apt-get update -q && $$sudo apt-get install -y -q --no-install-recommends $$missing; \
	fi

demo: $(STAMP)
	$(BIN)/decisioner warmup
	$(BIN)/decisioner generate --people $(PEOPLE) --items $(ITEMS) --seed $(SEED) --out $(WORLD)
	$(BIN)/decisioner simulate --world $(WORLD) --seed $(SEED)
	$(BIN)/decisioner replay $(WORLD)/events.jsonl --world $(WORLD) --seed $(SEED) --max-events $(REPLAY_EVENTS)

# The whole suite, run by `make test` (locked versions) and `make test-latest` (newest allowed).
# $(1) is the venv's bin directory.
define suite
	$(1)/ruff check src tests benchmarks examples
	$(1)/python -m pytest -q -p no:cacheprovider tests
	$(1)/python -m pytest -q -p no:cacheprovider --doctest-modules src/decisioner
	NUMBA_DISABLE_JIT=1 $(1)/python -m pytest -q -p no:cacheprovider tests/kernels
	$(1)/python -m pytest -q -p no:cacheprovider benchmarks --benchmark-disable
	$(1)/mypy
endef

test: $(STAMP) system
	$(call suite,$(BIN))

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks examples

# Inner loop: warm cache in the work tree, stop at the first failure, skip slow tests, the
# JIT-off run, doctests, benchmarks and mypy. `make test` is still what CI runs.
test-fast: export NUMBA_CACHE_DIR := $(CURDIR)/.numba_cache
test-fast: $(STAMP) system
	$(BIN)/python -m pytest -q -x -m "not slow" -p no:cacheprovider tests

test-nojit: $(STAMP)
	NUMBA_DISABLE_JIT=1 $(BIN)/python -m pytest -q -p no:cacheprovider tests/kernels

# Not stamped: every run upgrades, eagerly (the default strategy would keep an already
# installed dependency even when a newer release is allowed), then lists what moved past the lock.
test-latest: export NUMBA_CACHE_DIR := $(LATEST_CACHE)
test-latest:
	test -x $(LATEST_VENV)/bin/python || $(PY) -m venv $(LATEST_VENV)
	$(LATEST_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(LATEST_VENV)/bin/python -m pip install --quiet --upgrade --upgrade-strategy eager -e ".[dev]"
	grep -o '^[A-Za-z0-9._-]*==[^ ]*' $(LOCK) > $(LATEST_VENV)/locked.txt
	@echo "newer than $(LOCK):"; $(LATEST_VENV)/bin/python -m pip freeze --exclude-editable \
	  | tr _ - | grep -vixFf $(LATEST_VENV)/locked.txt || true
	$(call suite,$(LATEST_VENV)/bin)

# Re-resolves every version (newest allowed by pyproject.toml) for Python 3.11, with hashes.
# The build backend comes from [build-system] so the editable install is pinned too, and the
# pre-commit ruff hook gets the locked ruff. uv works on a copy (its current pins are uv's
# preferences), and the lock is replaced only if it changed: a new mtime would rebuild .venv.
lock:
	test -x $(LOCK_VENV)/bin/uv || ($(PY) -m venv $(LOCK_VENV) && $(LOCK_VENV)/bin/pip install --quiet "uv==$(UV_VERSION)")
	cp $(LOCK) $(LOCK_VENV)/lock.new
	$(PY) -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['build-system']['requires']))" \
	  | $(LOCK_VENV)/bin/uv pip compile pyproject.toml - --extra dev $(LOCK_FLAGS) --generate-hashes \
	      --python-version 3.11 --custom-compile-command "make lock" --quiet -o $(LOCK_VENV)/lock.new
	cmp -s $(LOCK_VENV)/lock.new $(LOCK) || cp $(LOCK_VENV)/lock.new $(LOCK)
	$(PY) -c "import pathlib, re; lock = pathlib.Path('$(LOCK)').read_text(); \
	  pin = re.search(r'^ruff==\S+', lock, re.M).group(0); p = pathlib.Path('.pre-commit-config.yaml'); \
	  p.write_text(re.sub(r'\"ruff==[^\"]*\"', '\"' + pin + '\"', p.read_text()))"

bench: $(STAMP)
	$(BIN)/python -m pytest benchmarks --benchmark-only --benchmark-columns=min,median,mean,max,rounds
	$(BIN)/decisioner bench --profiles 1000000 --items 10000

typecheck: $(STAMP)
	$(BIN)/mypy

clean:
	rm -rf $(VENV) $(LATEST_VENV) $(LOCK_VENV) .numba_cache .numba_cache_latest $(WORLD) .pytest_cache .benchmarks
