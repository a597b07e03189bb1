"""Cases of the JSON Schema Test Suite (when its checkout is present), fed to constrain
through a byte-level vocabulary: one byte token at a time, then end of sequence."""

from __future__ import annotations

import json
import os

import constrain
from constrain.errors import UnsatisfiableError
from conftest import byte_vocab
from grammar_sampling import byte_accepts

SUITE = os.environ.get("JSTS_DIR", "/work/shared/jsts")


def suite_cases(relpath: str, drafts=("draft4", "draft6", "draft7", "draft2019-09", "draft2020-12")):
    """(draft, description, schema, data, valid) of every test in ``<draft>/<relpath>``
    that exists; an empty list without the suite."""
    out = []
    for draft in drafts:
        path = os.path.join(SUITE, draft, relpath)
        if not os.path.exists(path):
            continue
        with open(path) as fh:
            groups = json.load(fh)
        for group in groups:
            for test in group["tests"]:
                out.append((draft, f"{group['description']}: {test['description']}", group["schema"],
                            test["data"], test["valid"]))
    return out


_VOCAB = None
_COMPILED: dict[str, object] = {}


def vocab():
    global _VOCAB
    if _VOCAB is None:
        _VOCAB = byte_vocab()
    return _VOCAB


def with_draft(schema, draft: str):
    """``schema`` with the ``$schema`` of ``draft`` unless it names one."""
    uri = {
        "draft4": "http://json-schema.org/draft-04/schema#",
        "draft6": "http://json-schema.org/draft-06/schema#",
        "draft7": "http://json-schema.org/draft-07/schema#",
        "draft2019-09": "https://json-schema.org/draft/2019-09/schema",
        "draft2020-12": "https://json-schema.org/draft/2020-12/schema",
    }[draft]
    if isinstance(schema, dict) and "$schema" not in schema:
        return {"$schema": uri, **schema}
    return schema


def compiled(schema, **options):
    key = json.dumps([schema, options], sort_keys=True)
    got = _COMPILED.get(key)
    if got is None:
        got = _COMPILED[key] = constrain.compile(constrain.JsonSchema(schema, **options), vocab())
    return got


def accepts(schema, text: str | bytes, **options) -> bool:
    """constrain's verdict on ``text`` under ``schema`` (whitespace "json" unless given);
    False for every text of a schema constrain finds unsatisfiable."""
    options.setdefault("whitespace", "json")
    data = text.encode("utf-8") if isinstance(text, str) else text
    try:
        grammar = compiled(schema, **options)
    except UnsatisfiableError:
        return False
    return byte_accepts(grammar, data)
