# gmm-suite: two commands for a newcomer, `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# PyTensor, numba and JAX keep compiled code in per-user caches, so every checkout on a machine
# reuses what an earlier run compiled; .ci/run points them at a new empty folder, as on a fresh
# machine.
export MPLBACKEND ?= Agg

.PHONY: demo test test-fast lint bench notebooks clean

# pip byte-compiles one file at a time (27 s of a fresh install's 52 here): compileall does it on
# every core and leaves out the packages' own test suites. Only a speed-up (hence the leading -):
# a file that does not compile stays source, as under pip.
$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet --no-compile -e ".[dev]"
	-$(BIN)/python -m compileall -q -j 0 -x '/tests?/' $(VENV)/lib > /dev/null
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/gmm demo --out reports/out/demo --force

# -n auto: one test process per core (compiles and samplers are mostly single-threaded);
# --maxschedchunk 1: tests go out one at a time, the slow ones first (tests/conftest.py)
test: $(STAMP)
	$(BIN)/python -m pytest -q -n auto --maxschedchunk 1

test-fast: $(STAMP)
	$(BIN)/python -m pytest -q -n auto --maxschedchunk 1 -m "not slow"

lint: $(STAMP)
	$(BIN)/ruff check .

bench: $(STAMP)
	$(BIN)/python benchmarks/em_vs_sklearn.py
	$(BIN)/python benchmarks/families_speed.py
	$(BIN)/python benchmarks/pymc_sampling.py

notebooks: $(STAMP)
	$(BIN)/python -m reports.notebooks --out reports/notebooks

clean:
	rm -rf $(VENV) reports/out .pytest_cache
