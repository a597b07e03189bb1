"""vLLM's general plugin for constrain: adds ``"constrain"`` to vLLM's structured-output
backends.

It lives apart from the ``constrain`` package so that loading it imports neither numba
nor constrain: vLLM loads general plugins in each worker before it rebinds its own
kernels, and that scan of every loaded module fails on numba's llvmlite bindings. What
the plugin patches imports :mod:`constrain.integrations.vllm` when a request first uses
the backend.
"""

from __future__ import annotations

import logging
import threading

__all__ = ["BACKEND_NAME", "TESTED_VLLM_VERSIONS", "plugin", "register"]

logger = logging.getLogger(__name__)

BACKEND_NAME = "constrain"
"""The value of ``structured_outputs_config.backend`` that selects constrain's backend."""

TESTED_VLLM_VERSIONS = ("0.32.0",)
"""vLLM releases the backend was tested with. vLLM has no registry for out-of-tree
structured-output backends, so :func:`register` extends its dispatch, which is vLLM's
internal code: other releases are refused."""

_registered = False
_lock = threading.Lock()


class UnsupportedVLLMError(RuntimeError):
    """The installed vLLM is not one the backend was tested with."""


def register() -> None:
    """Make ``"constrain"`` a value of vLLM's ``structured_outputs_config.backend`` (and of
    ``--structured-outputs-config.backend``). Idempotent. Raises
    :class:`UnsupportedVLLMError` on a vLLM release outside :data:`TESTED_VLLM_VERSIONS`."""
    global _registered
    import vllm

    if vllm.__version__ not in TESTED_VLLM_VERSIONS:
        raise UnsupportedVLLMError(
            f"constrain's vLLM structured-output backend was tested with vLLM {', '.join(TESTED_VLLM_VERSIONS)}; "
            f"this is vLLM {vllm.__version__}. Use constrain's logits processor instead "
            "(SamplingParams(extra_args={'constrain': {...}})), or install a tested vLLM"
        )
    with _lock:
        if _registered:
            return
        _extend_backend_choice()
        _patch_validation()
        _patch_manager()
        _registered = True


def plugin() -> None:
    """The ``vllm.general_plugins`` entry point: :func:`register`, or a warning on an
    untested vLLM (a plugin must not stop vLLM from starting)."""
    try:
        register()
    except UnsupportedVLLMError as exc:
        logger.warning("constrain: structured-output backend not registered: %s", exc)


def _extend_backend_choice() -> None:
    import typing

    from pydantic.dataclasses import rebuild_dataclass
    from vllm.config import structured_outputs as so_config

    cls = so_config.StructuredOutputsConfig
    field = cls.__dataclass_fields__["backend"]
    current = so_config.StructuredOutputsBackend if isinstance(field.type, str) else field.type
    choices = typing.get_args(current)
    if BACKEND_NAME in choices:
        return
    extended = typing.Literal[(*choices, BACKEND_NAME)]  # type: ignore[valid-type]
    so_config.StructuredOutputsBackend = extended
    field.type = extended
    cls.__annotations__["backend"] = extended
    rebuild_dataclass(cls, force=True)
    # VllmConfig's own validator embeds the field's schema: rebuild it too
    from vllm.config import VllmConfig

    rebuild_dataclass(VllmConfig, force=True)


def _patch_validation() -> None:
    from vllm.exceptions import VLLMValidationError
    from vllm.sampling_params import SamplingParams

    original = SamplingParams._validate_structured_outputs
    if getattr(original, "_constrain", False):
        return

    def _validate_structured_outputs(self, model_config, structured_outputs_config, tokenizer):
        params = self.structured_outputs
        if structured_outputs_config is None or params is None or structured_outputs_config.backend != BACKEND_NAME:
            return original(self, model_config, structured_outputs_config, tokenizer)
        if tokenizer is None:
            raise VLLMValidationError("structured outputs need a tokenizer (skip_tokenizer_init is set)")
        if params.whitespace_pattern is not None:
            raise VLLMValidationError("constrain's backend takes no whitespace_pattern: its JSON whitespace is "
                                      "bounded (what json.dumps writes)")
        if params._backend not in (None, BACKEND_NAME):
            raise VLLMValidationError(f"the request names backend {params._backend!r}; this engine uses "
                                      f"{BACKEND_NAME!r}")
        params.__post_init__()  # exactly one kind of constraint (vLLM's own message)
        from vllm.v1.structured_output.request import get_structured_output_key

        from constrain.integrations.vllm import check_request

        request_type, text = get_structured_output_key(params)
        try:
            check_request(request_type, text)
        except ValueError as exc:
            raise VLLMValidationError(str(exc)) from None
        params._backend = BACKEND_NAME

    _validate_structured_outputs._constrain = True  # type: ignore[attr-defined]
    SamplingParams._validate_structured_outputs = _validate_structured_outputs


def _patch_manager() -> None:
    from vllm.v1.structured_output import StructuredOutputManager

    original_init = StructuredOutputManager.grammar_init
    if getattr(original_init, "_constrain", False):
        return
    original_create = StructuredOutputManager._create_grammar

    def grammar_init(self, request):
        so = request.structured_output_request
        if so is not None and self.backend is None and so.params._backend == BACKEND_NAME:
            from constrain.integrations.vllm import StructuredOutputBackend

            self.backend = StructuredOutputBackend(
                self.vllm_config, tokenizer=self.tokenizer, vocab_size=self.vllm_config.model_config.get_vocab_size()
            )
        return original_init(self, request)

    def _create_grammar(self, request):
        so = request.structured_output_request
        if so is None or so.params._backend != BACKEND_NAME:
            return original_create(self, request)
        from constrain.integrations.vllm import compile_request

        return compile_request(self.backend, request, self.vllm_config)

    grammar_init._constrain = True  # type: ignore[attr-defined]
    StructuredOutputManager.grammar_init = grammar_init
    StructuredOutputManager._create_grammar = _create_grammar
