# Rescue station service. `make run` and `make test` work on a fresh machine:
# both create .venv here (Python 3.11) and install the locked dependencies.
PY ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
UV := $(BIN)/uv
STAMP := $(VENV)/.installed
# The gallery's scan kernel (built below).
SCAN_LIB := rescue/matching/_scan.so

.PHONY: install system-packages run test lint fmt bench accuracy lock clean messages

$(BIN)/python:
	$(PY) -m venv $(VENV)

# Debian packages the pages need: chromium (browser tests, never a downloaded
# browser), the CJK font (pages and PDFs in Chinese), poppler-utils (PDF checks),
# redis-server (tests/faults starts and kills a private one).
DEBS := chromium fonts-noto-cjk poppler-utils redis-server

$(STAMP): $(BIN)/python requirements.lock pyproject.toml package-lock.json
	$(BIN)/python -m pip install --quiet --disable-pip-version-check uv==0.13.8
	$(UV) pip sync --python $(BIN)/python requirements.lock
	$(UV) pip install --python $(BIN)/python --no-deps -e .
	npm ci --no-audit --no-fund --ignore-scripts  # htmx, swagger-ui (served by the app)
	@missing=$$(for p in $(DEBS); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages: $$missing"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
	fi
	touch $(STAMP)

install: $(STAMP) $(SCAN_LIB) system-packages  ## create .venv and install locked dependencies

# The gallery's scan kernel (rescue/matching/scan.py loads it with ctypes). Without
# a C compiler the service still runs: scans fall back to numpy (slower; `rescue
# doctor` says so).
$(SCAN_LIB): rescue/matching/_scan.c
	$(CC) -O3 -fPIC -shared -Wall -o $@ $< \
	  || echo "warning: could not build $@ (no C compiler?): gallery scans will use numpy"

# Debian packages the project needs beyond Python's: wrk (make bench's HTTP load
# generator). Installed only when missing; needs root and apt-get.
SYSTEM_PACKAGES := wrk
system-packages:
	@missing=""; for p in $(SYSTEM_PACKAGES); do command -v $$p >/dev/null || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  if command -v apt-get >/dev/null && [ "$$(id -u)" = 0 ]; then \
	    echo "installing Debian packages:$$missing"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
	  else echo "missing Debian packages:$$missing (apt-get install$$missing as root); make bench refuses its API rows without wrk"; fi; \
	fi

run: $(STAMP) $(SCAN_LIB)  ## serve the API on 127.0.0.1:8000 (SQLite + embedded S3 under ./var)
	$(BIN)/rescue serve

lint: $(STAMP) $(SCAN_LIB)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

fmt: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

# Test processes (pytest-xdist; a file's tests stay in one process). Each starts
# its own database, S3 server and worker; TEST_PROCESSES=0 runs in this one.
TEST_PROCESSES ?= 2

test: lint  ## linters, then the whole suite on real PostgreSQL, Redis and S3
	$(BIN)/python -m tests.preflight
	$(BIN)/pytest -n $(TEST_PROCESSES) --dist loadfile

bench: $(STAMP) $(SCAN_LIB)  ## benchmarks, each figure next to its same-run baseline -> docs/performance.md
	$(BIN)/python -m tests.preflight
	$(BIN)/python -m bench.search
	$(BIN)/python -m bench.embedding
	$(BIN)/python -m bench.e2e
	$(BIN)/python -m bench.imports
	$(BIN)/python -m bench.worker_step
	$(BIN)/python -m bench.import_photos
	$(BIN)/python -m bench.report

accuracy: $(STAMP) $(SCAN_LIB)  ## matching accuracy on ../shared/faces -> docs/accuracy.md
	$(BIN)/python -m bench.accuracy

messages: $(STAMP)  ## add new msgids to rescue/i18n/locale/*/messages.po (then translate them)
	$(BIN)/python -m rescue.i18n.extract

lock: $(BIN)/python  ## re-resolve requirements.lock from pyproject.toml
	$(BIN)/python -m pip install --quiet uv==0.13.8
	$(UV) pip compile pyproject.toml --group dev --override overrides.txt \
	  --generate-hashes --python-version 3.11 -o requirements.lock

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .mypy_cache node_modules
