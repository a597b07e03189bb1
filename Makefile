# Two entry points: `make demo` and `make test`. Both set up .venv on first use.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.constrain-installed

# Engine integrations, each in a venv of its own (make test-engines runs them all).
VLLM_VENV ?= .venv-vllm
LLAMA_VENV ?= .venv-llama
SGLANG_VENV ?= .venv-sglang
VLLM_STAMP := $(VLLM_VENV)/.constrain-installed
LLAMA_STAMP := $(LLAMA_VENV)/.constrain-installed
SGLANG_STAMP := $(SGLANG_VENV)/.constrain-installed
ENGINE_PYTEST := -m pytest -q -p no:cacheprovider

.PHONY: setup demo serve test test-fast bench clean setup-vllm setup-llama-cpp test-vllm test-llama-cpp test-engines bench-vllm setup-sglang test-sglang

setup: $(STAMP)

$(STAMP): pyproject.toml scripts/setup.sh
	PYTHON=$(PYTHON) VENV=$(VENV) bash scripts/setup.sh
	touch $(STAMP)

demo: $(STAMP)
	$(PY) -m constrain.demo

serve: $(STAMP)
	$(PY) -m constrain serve

test: $(STAMP)
	$(PY) -m pytest -q -n 2 tests

test-fast: $(STAMP)
	$(PY) -m pytest -q -x -m "not slow" tests

bench: $(STAMP)
	$(PY) benchmarks/bench_regex.py

setup-vllm: $(VLLM_STAMP)

$(VLLM_STAMP): pyproject.toml scripts/setup_engine_vllm.sh
	PYTHON=$(PYTHON) VENV=$(VLLM_VENV) bash scripts/setup_engine_vllm.sh
	touch $(VLLM_STAMP)

test-vllm: $(VLLM_STAMP)
	$(VLLM_VENV)/bin/python $(ENGINE_PYTEST) tests/engines/test_vllm_units.py tests/engines/test_vllm.py tests/engines/test_vllm_server.py

bench-vllm: $(VLLM_STAMP)
	$(VLLM_VENV)/bin/python benchmarks/bench_vllm.py

setup-llama-cpp: $(LLAMA_STAMP)

$(LLAMA_STAMP): pyproject.toml scripts/setup_engine_llama.sh
	PYTHON=$(PYTHON) VENV=$(LLAMA_VENV) bash scripts/setup_engine_llama.sh
	touch $(LLAMA_STAMP)

test-llama-cpp: $(LLAMA_STAMP)
	$(LLAMA_VENV)/bin/python $(ENGINE_PYTEST) tests/engines/test_llama_cpp.py

setup-sglang: $(SGLANG_STAMP)

$(SGLANG_STAMP): pyproject.toml scripts/setup_engine_sglang.sh
	PYTHON=$(PYTHON) VENV=$(SGLANG_VENV) bash scripts/setup_engine_sglang.sh
	touch $(SGLANG_STAMP)

test-sglang: $(SGLANG_STAMP)
	$(SGLANG_VENV)/bin/python $(ENGINE_PYTEST) tests/engines/test_sglang.py

test-engines: test-vllm test-llama-cpp test-sglang

clean:
	rm -rf $(VENV) $(VLLM_VENV) $(LLAMA_VENV) $(SGLANG_VENV) build *.egg-info
