"""Random walks through the masks of schemas whose keywords reach across items and
branches (contains, uniqueItems, unevaluated*, dynamic references): every document a walk
finishes, under a token budget, validates with ``jsonschema``."""

from __future__ import annotations

import json
import random

import jsonschema
import numpy as np
import pytest

import constrain
from conftest import byte_vocab

V = byte_vocab()
D2020 = "https://json-schema.org/draft/2020-12/schema"

SCHEMAS = [
    {"type": "array", "items": {"type": "integer", "minimum": 0, "maximum": 5}, "uniqueItems": True,
     "contains": {"minimum": 3}, "minContains": 1, "maxContains": 2},
    {"type": "array", "items": {"enum": ["a", "b", None, True, 1]}, "uniqueItems": True, "minItems": 2},
    {"type": "array", "contains": {"type": "string", "maxLength": 2}, "minContains": 2, "maxItems": 5,
     "items": {"type": ["string", "integer"]}},
    {"type": "object", "properties": {"kind": {"enum": ["a", "b"]}},
     "required": ["kind"],
     "oneOf": [{"properties": {"kind": {"const": "a"}, "x": {"type": "integer"}}},
               {"properties": {"kind": {"const": "b"}, "y": {"type": "boolean"}}}],
     "unevaluatedProperties": False},
    {"type": "array", "prefixItems": [{"type": "string"}],
     "if": {"prefixItems": [True, {"type": "integer"}]}, "then": {"prefixItems": [True, True, {"type": "null"}]},
     "unevaluatedItems": False},
    {"$id": "https://example.com/tree", "$dynamicAnchor": "node", "type": "object",
     "properties": {"v": {"type": "integer"}, "kids": {"type": "array", "items": {"$dynamicRef": "#node"}, "maxItems": 2}},
     "required": ["v"], "unevaluatedProperties": False},
]


@pytest.mark.parametrize("schema", SCHEMAS)
def test_random_walks_finish_valid(schema):
    schema = {"$schema": D2020, **schema}
    validator = jsonschema.Draft202012Validator(schema)
    g = constrain.compile(constrain.JsonSchema(schema), V)
    rng = random.Random(3)
    bitmask = constrain.allocate_bitmask(1, V.model_vocab_size)
    for _ in range(60):
        m = g.matcher(max_tokens=48)
        out = bytearray()
        while True:
            m.fill_bitmask(bitmask, 0)
            bits = np.unpackbits(bitmask[0].view(np.uint8), bitorder="little")[: V.size]
            allowed = np.flatnonzero(bits)
            assert allowed.size, out  # some token or EOS is always allowed
            tok = int(rng.choice(allowed))
            if tok in V.eos_token_ids:
                break
            assert m.advance(tok)
            out += V.token_bytes(tok)
        assert validator.is_valid(json.loads(out)), (schema, out)
