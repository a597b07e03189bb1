"""constrain: structured-output decoding with exact token masks."""

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
from .vocabulary import Vocabulary

__all__ = [
    "AssetError",
    "CompileLimitError",
    "ConstrainError",
    "GrammarError",
    "MatcherError",
    "RegexError",
    "SchemaError",
    "SpecError",
    "UnsatisfiableError",
    "Vocabulary",
    "VocabularyError",
]

__version__ = "0.1.0"
