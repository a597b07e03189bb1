"""References: ``$ref`` (JSON pointers, ``$anchor``, ``$id``-based URIs), ``$dynamicRef``
(2020-12), ``$recursiveRef`` (2019-09), and the draft a schema is written in.

Resolution is ``referencing``'s (the resolver behind ``jsonschema``), over a registry of the
schema's own resources plus the official meta-schemas of every draft
(``jsonschema-specifications``), so a ``$ref`` to a meta-schema resolves offline. What the
compiler adds: a *location* for every resolved subschema (a JSON pointer in the schema, or
``<uri>#<pointer>`` in a meta-schema) that names rules, keys the memo and points errors
at the right place, and the choice of a dynamic reference's target, which depends on the
path that evaluation took. That path is not known when compiling, so a dynamic reference
is resolved only where its target does not depend on it (see :meth:`resolve_dynamic`)."""

from __future__ import annotations

from typing import Any
from urllib.parse import unquote, urldefrag, urljoin

import referencing.exceptions
import referencing.jsonschema
from jsonschema_specifications import REGISTRY as META_SCHEMAS

from ...errors import SchemaError

_SPECS = {4: referencing.jsonschema.DRAFT4, 6: referencing.jsonschema.DRAFT6, 7: referencing.jsonschema.DRAFT7,
          2019: referencing.jsonschema.DRAFT201909, 2020: referencing.jsonschema.DRAFT202012}
# Keywords whose value maps names to schemas: the map itself is not a schema (its "$id"
# or "id" key would be a property name).
_SCHEMA_MAPS = frozenset("properties patternProperties $defs definitions dependentSchemas dependencies".split())
_ROOT_URI = ""


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


def _pointer_tokens(pointer: str) -> list[str]:
    return [t.replace("~1", "/").replace("~0", "~") for t in pointer.split("/")[1:]] if pointer else []


class RefResolver:
    """Resolves references against the root schema (``self.root``) of the compiler."""

    def _registry(self) -> Any:
        reg = getattr(self, "_reg", None)
        if reg is None:
            spec = _SPECS[self.draft]
            root_id = self._id_of(self.root)
            self._root_uri = urldefrag(root_id)[0] if root_id else _ROOT_URI
            resource = spec.create_resource(self.root)
            reg = self._reg = META_SCHEMAS.with_resource(self._root_uri, resource)
            self._docs: dict[str, Any] = {self._root_uri: self.root}
            self._where: dict[int, tuple[str, str]] = {}
            self._index(self._root_uri, self.root, "")
        return reg

    def _id_of(self, node: Any) -> str | None:
        """The base-changing ``$id`` (``id`` in draft 4) of a schema object, if any."""
        if not isinstance(node, dict):
            return None
        v = node.get("id" if self.draft == 4 else "$id")
        if not isinstance(v, str) or (self.draft <= 7 and (v.startswith("#") or "$ref" in node)):
            return None  # before 2019-09, "#name" is an anchor and a $ref's siblings are ignored
        return v

    def _index(self, uri: str, node: Any, pointer: str) -> None:
        """Record the location of every object and array of a document (by identity)."""
        stack = [(node, pointer)]
        while stack:
            n, p = stack.pop()
            if isinstance(n, dict):
                self._where.setdefault(id(n), (uri, p))
                stack.extend((v, f"{p}/{esc_ptr(k)}") for k, v in n.items() if isinstance(v, (dict, list)))
            elif isinstance(n, list):
                self._where.setdefault(id(n), (uri, p))
                stack.extend((v, f"{p}/{i}") for i, v in enumerate(n) if isinstance(v, (dict, list)))

    def _location(self, uri: str, pointer: str) -> str:
        return pointer if uri == self._root_uri else f"{uri}#{pointer}"

    def _split(self, ptr: str) -> tuple[str, str]:
        """(document URI, JSON pointer) of a location."""
        if ptr.startswith("/") or not ptr or "#" not in ptr:
            return self._root_uri, ptr
        uri, _, pointer = ptr.partition("#")
        return uri, pointer

    def _base_at(self, ptr: str) -> str:
        """The base URI in force at a location (the ``$id``s of the objects around it)."""
        uri, pointer = self._split(ptr)
        node = self._docs.get(uri)
        base = uri
        in_map = False  # whether ``node`` maps names to schemas (so is not a schema itself)
        for tok in [None] + _pointer_tokens(pointer):
            if tok is not None:
                was_map = in_map
                if isinstance(node, dict) and tok in node:
                    node = node[tok]
                elif isinstance(node, list) and tok.isdigit() and int(tok) < len(node):
                    node = node[int(tok)]
                else:
                    break
                in_map = not was_map and tok in _SCHEMA_MAPS
            if not in_map:
                sid = self._id_of(node)
                if sid is not None:
                    base = urldefrag(urljoin(base, sid))[0]
        return base

    def _lookup(self, ref: str, ptr: str) -> Any:
        try:
            return self._registry().resolver(base_uri=self._base_at(ptr)).lookup(ref)
        except referencing.exceptions.Unresolvable as e:
            target = urldefrag(urljoin(self._base_at(ptr), ref))[0]
            if target and target not in self._docs and not self._known(target):
                raise SchemaError(f"$ref {ref!r} points outside this document ({target} is not available offline: "
                                  "only the schema's own resources and the official draft meta-schemas are)", ptr) from e
            raise SchemaError(f"$ref {ref!r} does not resolve ({type(e).__name__})", ptr) from e

    def _known(self, uri: str) -> bool:
        try:
            self._registry().contents(uri)
            return True
        except (referencing.exceptions.Unresolvable, referencing.exceptions.NoSuchResource):
            return False

    def _located(self, target: Any, ptr: str, ref: str) -> tuple[Any, str]:
        """``target`` with its location (a meta-schema is indexed when first reached)."""
        if not isinstance(target, (dict, list)):
            return target, f"{ptr}/$ref"
        where = self._where.get(id(target))
        if where is None:
            for uri in META_SCHEMAS:
                if uri not in self._docs:
                    doc = META_SCHEMAS.contents(uri)
                    self._docs[uri] = doc
                    self._index(uri, doc, "")
            where = self._where.get(id(target))
        if where is None:
            raise SchemaError(f"$ref {ref!r} resolves to a schema this compiler cannot locate", ptr)
        return target, self._location(*where)

    def resolve(self, ref: str, ptr: str) -> tuple[Any, str]:
        """The subschema ``$ref`` names from location ``ptr``, and its location; raises
        :class:`SchemaError` when it points nowhere or outside what is available offline."""
        resolved = self._lookup(unquote(ref) if ref.startswith("#/") else ref, ptr)
        return self._located(resolved.contents, ptr, ref)

    def resolve_dynamic(self, keyword: str, ref: str, ptr: str) -> tuple[Any, str]:
        """The target of ``$dynamicRef`` / ``$recursiveRef``. It is the static target unless
        that target carries the matching dynamic anchor; then it is the *outermost* schema
        resource on the evaluation path that declares the anchor. The outermost resource is
        always the root schema, so a root that declares the anchor wins; else, if one
        resource alone declares it (the static target's), it is that one; else, if the root
        references exactly one resource that declares it (a meta-schema, typically), it is
        that one. Any other case depends on the path and raises :class:`SchemaError`."""
        recursive = keyword == "$recursiveRef"
        target, tptr = self.resolve(ref, ptr)
        if recursive:
            anchor = "#"
            dynamic = isinstance(target, dict) and target.get("$recursiveAnchor") is True
        else:
            frag = urldefrag(ref)[1]
            anchor = frag
            dynamic = (bool(frag) and not frag.startswith("/") and isinstance(target, dict)
                       and target.get("$dynamicAnchor") == frag)
        if not dynamic:
            return target, tptr
        memo = self.__dict__.setdefault("_dynamic_memo", {})
        if (anchor, recursive) not in memo:
            memo[(anchor, recursive)] = self._declaring_resources(anchor, recursive)
        declaring = memo[(anchor, recursive)]
        root_hit = declaring.get(self._root_uri)
        if root_hit is not None:
            return root_hit
        if len(declaring) == 1:
            return next(iter(declaring.values()))
        if "_root_ref_uris" not in self.__dict__:
            self._root_ref_uris = self._root_refs()
        entered = {u for u in self._root_ref_uris if u in declaring}
        if len(entered) == 1:
            return declaring[entered.pop()]
        raise SchemaError(f"{keyword} {ref!r} resolves by the evaluation path (several schema resources declare "
                          f"{'$recursiveAnchor' if recursive else '$dynamicAnchor ' + repr(anchor)}); not supported", ptr)

    def _declaring_resources(self, anchor: str, recursive: bool) -> dict[str, tuple[Any, str]]:
        """Resource URI -> (subschema, location) of each resource that declares the dynamic
        anchor (``$recursiveAnchor: true`` at its root, for 2019-09)."""
        out: dict[str, tuple[Any, str]] = {}
        for key, (uri, pointer) in list(self._where.items()):
            loc = self._location(uri, pointer)
            node = self._node(uri, pointer)
            if not isinstance(node, dict):
                continue
            if recursive:
                if node.get("$recursiveAnchor") is True and (self._id_of(node) is not None or pointer == ""):
                    out.setdefault(self._base_at(loc), (node, loc))
            elif node.get("$dynamicAnchor") == anchor:
                out.setdefault(self._base_at(loc), (node, loc))
        return out

    def _node(self, uri: str, pointer: str) -> Any:
        node = self._docs.get(uri)
        for tok in _pointer_tokens(pointer):
            node = node[int(tok)] if isinstance(node, list) else node[tok]
        return node

    def _root_refs(self) -> set[str]:
        """Base URIs of the resources that ``$ref``s in the root document point into."""
        out: set[str] = set()
        for key, (uri, pointer) in list(self._where.items()):
            if uri != self._root_uri:
                continue
            node = self._node(uri, pointer)
            if isinstance(node, dict) and isinstance(node.get("$ref"), str):
                try:
                    _, loc = self.resolve(node["$ref"], pointer)
                except SchemaError:
                    continue
                out.add(self._base_at(loc))
        return out
