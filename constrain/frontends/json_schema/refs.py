"""``$ref`` resolution (JSON pointers and anchors, local to the document) and drafts."""

from __future__ import annotations

from typing import Any
from urllib.parse import unquote

from ...errors import SchemaError


def esc_ptr(token: str) -> str:
    """``token`` escaped for use in a JSON pointer."""
    return token.replace("~", "~0").replace("/", "~1")


def draft_of(schema: Any) -> int:
    """The draft ``$schema`` names (4 for 3 and 4, 6, 7, 2019, 2020); 2020 when it names none."""
    if isinstance(schema, dict):
        uri = schema.get("$schema")
        if isinstance(uri, str):
            for mark, draft in (("draft-03", 4), ("draft-04", 4), ("draft-06", 6), ("draft-07", 7),
                                ("2019-09", 2019), ("2020-12", 2020)):
                if mark in uri:
                    return draft
    return 2020


class RefResolver:
    """Resolves ``$ref`` against the root schema (``self.root``) of the compiler."""

    def resolve(self, ref: str, ptr: str) -> tuple[Any, str]:
        """The subschema a local ``$ref`` names, and its pointer; raises :class:`SchemaError` otherwise."""
        frag = None
        if ref.startswith("#"):
            frag = ref[1:]
        else:
            root_id = self.root.get("$id", self.root.get("id")) if isinstance(self.root, dict) else None
            if isinstance(root_id, str) and ref.split("#")[0] == root_id.split("#")[0]:
                frag = ref.partition("#")[2]
        if frag is None:
            raise SchemaError(f"$ref {ref!r} points outside this document (only local references are supported)", ptr)
        frag = unquote(frag)
        if frag and not frag.startswith("/"):
            found = self._find_anchor(self.root, frag)
            if found is None:
                raise SchemaError(f"$ref {ref!r}: anchor not found", ptr)
            return found
        node = self.root
        for tok in frag.split("/")[1:] if frag else []:
            tok = tok.replace("~1", "/").replace("~0", "~")
            if isinstance(node, dict) and tok in node:
                node = node[tok]
            elif isinstance(node, list) and tok.isdigit() and int(tok) < len(node):
                node = node[int(tok)]
            else:
                raise SchemaError(f"$ref {ref!r} does not resolve", ptr)
        return node, frag

    def _find_anchor(self, node: Any, name: str, path: str = "") -> tuple[Any, str] | None:
        if isinstance(node, dict):
            if node.get("$anchor") == name or node.get("$id") == "#" + name or node.get("id") == "#" + name:
                return node, path
            for k, v in node.items():
                if k in ("enum", "const", "default", "examples"):
                    continue
                r = self._find_anchor(v, name, f"{path}/{esc_ptr(k)}")
                if r:
                    return r
        elif isinstance(node, list):
            for i, v in enumerate(node):
                r = self._find_anchor(v, name, f"{path}/{i}")
                if r:
                    return r
        return None
