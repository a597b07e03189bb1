"""constrain: structured-output decoding with exact token masks.

    vocab = constrain.Vocabulary.from_tokenizer(tokenizer)
    grammar = constrain.compile(MyPydanticModel, vocab)   # or Regex / Lark / GBNF / JsonSchema
    matcher = grammar.matcher()
"""

from .bitmask import allocate_bitmask, apply_bitmask
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
from .matcher import CompiledGrammar, Matcher, fill_bitmasks
from .specs import GBNF, JsonSchema, Lark, Regex, clear_caches, compile, warmup
from .vocabulary import Vocabulary

__all__ = [
    "AssetError",
    "CompileLimitError",
    "CompiledGrammar",
    "ConstrainError",
    "GBNF",
    "GrammarError",
    "JsonSchema",
    "Lark",
    "Matcher",
    "MatcherError",
    "Regex",
    "RegexError",
    "SchemaError",
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
