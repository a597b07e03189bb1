# Two entry points: `make demo` and `make test`. Both set up .venv on first use.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.constrain-installed

.PHONY: setup demo test test-fast bench clean

setup: $(STAMP)

$(STAMP): pyproject.toml scripts/setup.sh
	PYTHON=$(PYTHON) VENV=$(VENV) bash scripts/setup.sh
	touch $(STAMP)

demo: $(STAMP)
	$(PY) -m constrain.demo

test: $(STAMP)
	$(PY) -m pytest -q -n 2 tests

test-fast: $(STAMP)
	$(PY) -m pytest -q -x -m "not slow" tests

bench: $(STAMP)
	$(PY) benchmarks/bench_regex.py

clean:
	rm -rf $(VENV) build *.egg-info
