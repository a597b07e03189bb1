"""Grammars shipped with constrain, as package data.

Each ``<name>.lark`` here can be read with :func:`read` and imported from any Lark
grammar converted by constrain (``%import json.value``). ``examples/<name>.txt`` holds
valid inputs for each grammar, separated by lines that hold only ``%%``.
"""

from __future__ import annotations

from importlib import resources

__all__ = ["names", "read", "examples", "EXAMPLE_SEPARATOR"]

EXAMPLE_SEPARATOR = "%%\n"


def names(suffix: str = ".lark") -> list[str]:
    """Names (without suffix) of the bundled grammars whose file ends with ``suffix``."""
    root = resources.files(__name__)
    return sorted(p.name[: -len(suffix)] for p in root.iterdir() if p.name.endswith(suffix))


def read(name: str, suffix: str = ".lark") -> str:
    """The text of the bundled grammar ``name``; raises FileNotFoundError if there is none."""
    return (resources.files(__name__) / f"{name}{suffix}").read_text(encoding="utf-8")


def examples(name: str) -> list[str]:
    """The valid example inputs for grammar ``name``, each exactly as it appears in the file.

    An example ends with the line break before its ``%%`` line; the last one keeps the
    file's final line break.
    """
    path = resources.files(__name__) / "examples" / f"{name}.txt"
    with path.open("r", encoding="utf-8", newline="") as handle:
        text = handle.read()
    lines = text.splitlines(keepends=True)
    out: list[str] = []
    current: list[str] = []
    for line in lines:
        if line.rstrip("\r\n") == "%%":
            out.append("".join(current))
            current = []
        else:
            current.append(line)
    out.append("".join(current))
    return out
