"""The JSON-Schema-Test-Suite (the part beside the repository, ``../shared/jsts``), every
draft, core, optional and format: no instance the suite marks invalid is accepted by a
grammar that compiled, and most core groups compile. Byte-level vocabulary; each instance
as ``json.dumps`` writes it."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import pytest

import constrain
from conftest import byte_vocab

SUITE = Path(__file__).resolve().parents[2] / "shared" / "jsts"
DIALECTS = {"draft2020-12": "https://json-schema.org/draft/2020-12/schema",
            "draft2019-09": "https://json-schema.org/draft/2019-09/schema",
            "draft7": "http://json-schema.org/draft-07/schema#", "draft6": "http://json-schema.org/draft-06/schema#",
            "draft4": "http://json-schema.org/draft-04/schema#"}
V = byte_vocab()


def accepts(grammar, text: str) -> bool:
    m = grammar.matcher()
    return all(m.advance(b) for b in text.encode()) and m.is_accepting()


@pytest.mark.skipif(not SUITE.is_dir(), reason="the JSON-Schema-Test-Suite is not beside the repository")
@pytest.mark.parametrize("draft", sorted(DIALECTS))
def test_no_wrong_accepts(draft):
    wrong, core_groups, core_compiled = [], 0, 0
    for path in sorted((SUITE / draft).rglob("*.json")):
        core = path.parent == SUITE / draft
        for group in json.loads(path.read_text()):
            schema = group["schema"]
            if isinstance(schema, dict) and "$schema" not in schema:
                schema = {"$schema": DIALECTS[draft], **schema}
            core_groups += core
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    g = constrain.compile(constrain.JsonSchema(schema), V, cache=False)
            except constrain.ConstrainError:
                continue
            core_compiled += core
            for test in group["tests"]:
                if not test["valid"] and accepts(g, json.dumps(test["data"])):
                    wrong.append(f"{path.relative_to(SUITE)}: {group['description']} / {test['description']}")
    assert not wrong, "\n".join(wrong)
    assert core_compiled >= 0.8 * core_groups, (core_compiled, core_groups)
