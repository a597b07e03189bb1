"""Regular languages over bytes: minimized byte DFAs and the regex compiler."""

from .dfa import ByteDFA, concat, difference, empty_dfa, intersect, literal_dfa, union
from .regex import compile_regex, compile_terminal

__all__ = [
    "ByteDFA",
    "compile_regex",
    "compile_terminal",
    "concat",
    "difference",
    "empty_dfa",
    "intersect",
    "literal_dfa",
    "union",
]
