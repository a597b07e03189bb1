"""constrain: structured-output decoding with exact token masks.

    vocab = constrain.Vocabulary.from_tokenizer(tokenizer)
    grammar = constrain.compile(MyPydanticModel, vocab)   # or Regex / Lark / GBNF / JsonSchema / Grammar
    matcher = grammar.matcher()
"""

import typing as _typing

from ._caches import numba_cache_dir as _numba_cache_dir

_numba_cache_dir()  # before any kernel is decorated

from .bitmask import allocate_bitmask, apply_bitmask
from .device_masks import DeviceLimits, DeviceMasks, DeviceStepper
from .errors import (
    AssetError,
    CompileLimitError,
    ConstrainError,
    GrammarError,
    MatcherError,
    RegexError,
    SchemaError,
    SpecError,
    UnsatisfiableError,
    VocabularyError,
)
from .grammar.ir import Grammar
from .limits import Limits
from .matcher import CompiledGrammar, Matcher, fill_bitmasks
from .specs import GBNF, JsonSchema, Lark, Regex, clear_caches, compile, warmup
from .vocabulary import Vocabulary

if _typing.TYPE_CHECKING:
    from .frontends.json_schema import SchemaReport

__all__ = [
    "AssetError",
    "CompileLimitError",
    "CompiledGrammar",
    "ConstrainError",
    "DeviceLimits",
    "DeviceMasks",
    "DeviceStepper",
    "GBNF",
    "Grammar",
    "GrammarError",
    "JsonSchema",
    "LLM",
    "Lark",
    "Limits",
    "Matcher",
    "MatcherError",
    "Regex",
    "RegexError",
    "SchemaError",
    "SchemaReport",
    "SpecError",
    "UnsatisfiableError",
    "Vocabulary",
    "VocabularyError",
    "allocate_bitmask",
    "apply_bitmask",
    "clear_caches",
    "compile",
    "fill_bitmasks",
    "warmup",
]

__version__ = "0.1.0"

from ._warmup import prefetch as _prefetch

_prefetch()  # kernels load from the disk cache in the background, when it holds them all


def __getattr__(name: str) -> type:
    # The generation loop imports torch: loaded when first named.
    if name == "LLM":
        from .serving import LLM

        globals()[name] = LLM
        return LLM
    # The JSON Schema front end loads on first use (as compile loads it): importing it
    # costs tens of milliseconds that a regex or grammar user need not pay.
    if name == "SchemaReport":
        from .frontends.json_schema import SchemaReport

        globals()[name] = SchemaReport
        return SchemaReport
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | {"LLM", "SchemaReport"})
