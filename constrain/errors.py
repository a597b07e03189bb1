"""Exception hierarchy: every error constrain raises derives from ConstrainError."""

from __future__ import annotations


class ConstrainError(Exception):
    """Root of every error raised by constrain."""


class VocabularyError(ConstrainError, ValueError):
    """A tokenizer or vocabulary could not be turned into exact token bytes."""


class AssetError(ConstrainError, RuntimeError):
    """A bundled model or tokenizer package is missing or unreadable."""


class SpecError(ConstrainError, ValueError):
    """A spec (regex, grammar, schema) is malformed or uses an unsupported construct."""


class RegexError(SpecError):
    """A regular expression is malformed or cannot be a finite automaton.

    ``position`` is the 0-based offset of the offending construct in ``pattern``.
    """

    def __init__(self, message: str, pattern: str | None = None, position: int | None = None):
        self.msg = message
        self.pattern = pattern
        self.position = position
        text = message
        if pattern is not None and position is not None:
            text = f"{message} at position {position}\n  {pattern}\n  {' ' * position}^"
        elif pattern is not None:
            text = f"{message} in pattern {pattern!r}"
        super().__init__(text)


class GrammarError(SpecError):
    """A grammar is malformed (undefined rule, bad syntax, unsupported directive)."""


class SchemaError(SpecError):
    """A JSON Schema is malformed or uses a keyword that cannot be enforced.

    ``pointer`` is a JSON pointer to the offending place in the schema.
    """

    def __init__(self, message: str, pointer: str = ""):
        self.pointer = pointer
        super().__init__(f"{message} at {pointer or '/'}")


class UnsatisfiableError(SpecError):
    """No token sequence of the vocabulary can produce a member of the spec's language."""


class CompileLimitError(ConstrainError, RuntimeError):
    """Compiling a spec exceeded a limit (states, time, memory)."""


class MatcherError(ConstrainError, RuntimeError):
    """A matcher was used in a way its state does not allow."""


class PromptTooLongError(ConstrainError, ValueError):
    """A prompt plus the tokens asked for exceeds the model's positions."""
