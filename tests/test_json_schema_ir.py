"""JSON Schema -> grammar IR, checked by an independent recognizer against MaskBench data.

The recognizer below does not use constrain's automata or engine: it splits a JSON text
into lexemes at JSON token boundaries (whitespace attached to the punctuation, as the
front door's terminals are built), checks each terminal with Python's ``re`` (decoding
JSON string contents for ``json_string`` regexes), and parses with a small Earley parser.
"""

from __future__ import annotations

import gzip
import json
import os
import random
import re
from functools import lru_cache

import pytest

from constrain.errors import CompileLimitError, SchemaError, UnsatisfiableError
from constrain.frontends.json_schema import json_schema_to_grammar
from constrain.grammar.ir import Concat, Difference, Grammar, Intersect, Lit, Union_
from constrain.grammar.ir import RegexTerm as Regex

DEV = "/work/shared/maskbench/dev.jsonl.gz"

# ---------------------------------------------------------------------- terminals

_RAW_TOKEN = re.compile(
    r'(?P<ws>[ \t\n\r]+)|(?P<str>"(?:[^"\\\x00-\x1f]|\\["\\/bfnrt]|\\u[0-9a-fA-F]{4})*")'
    r"|(?P<num>-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?)|(?P<lit>true|false|null)"
    r"|(?P<p>[{}\[\],:])"
)


def lex(text: str) -> list[str] | None:
    """Lexemes: values, and punctuation with the whitespace around it attached."""
    raw: list[tuple[str, str]] = []
    pos = 0
    while pos < len(text):
        m = _RAW_TOKEN.match(text, pos)
        if not m:
            return None
        raw.append((m.lastgroup, m.group()))
        pos = m.end()
    out: list[str] = []
    i = 0
    n = len(raw)
    while i < n:
        kind, t = raw[i]
        if kind == "ws":
            nxt = raw[i + 1][1] if i + 1 < n else None
            if nxt in ("}", "]", ",", ":"):
                raw[i + 1] = (raw[i + 1][0], t + nxt)
            else:
                out.append(t)
            i += 1
            continue
        if kind == "p" and t[-1] in "{[,:":
            # Opening punctuation takes the whitespace after it; `{ }` and `[ ]` are one lexeme.
            core = t[-1]
            j = i + 1
            if j < n and raw[j][0] == "ws":
                t += raw[j][1]
                j += 1
            if core in "{[" and j < n and raw[j][1] == {"{": "}", "[": "]"}[core]:
                t += raw[j][1]
                j += 1
            out.append(t)
            i = j
            continue
        out.append(t)
        i += 1
    return out


def _py_flags(r: Regex) -> int:
    f = re.ASCII if r.ascii else 0
    if r.ignore_case:
        f |= re.IGNORECASE
    return f


@lru_cache(maxsize=None)
def _compiled(source: str, flags: int) -> re.Pattern:
    return re.compile(source, flags)


def term_matches(term, s: str) -> bool:
    """Whether the text ``s`` is in the language of terminal ``term`` (Python semantics)."""
    if isinstance(term, Lit):
        text = term.text.decode() if isinstance(term.text, bytes) else term.text
        return s.casefold() == text.casefold() if term.ignore_case else s == text
    if isinstance(term, Regex):
        if term.json_string:
            try:
                s = json.loads('"' + s + '"')
            except ValueError:
                return False
            if not isinstance(s, str):
                return False
        rx = _compiled(term.source, _py_flags(term))
        return (rx.search(s) if term.search else rx.fullmatch(s)) is not None
    if isinstance(term, Union_):
        return any(term_matches(p, s) for p in term.parts)
    if isinstance(term, Intersect):
        return all(term_matches(p, s) for p in term.parts)
    if isinstance(term, Difference):
        return term_matches(term.left, s) and not term_matches(term.right, s)
    if isinstance(term, Concat):
        return _concat(term.parts, s)
    raise TypeError(term)


def _concat(parts, s: str) -> bool:
    if not parts:
        return s == ""
    first = parts[0]
    if isinstance(first, Lit) and not first.ignore_case:
        t = first.text.decode() if isinstance(first.text, bytes) else first.text
        return s.startswith(t) and _concat(parts[1:], s[len(t):])
    last = parts[-1]
    if isinstance(last, Lit) and not last.ignore_case:
        t = last.text.decode() if isinstance(last.text, bytes) else last.text
        return s.endswith(t) and _concat(parts[:-1], s[: len(s) - len(t)])
    return any(term_matches(first, s[:k]) and _concat(parts[1:], s[k:]) for k in range(len(s) + 1))


# ---------------------------------------------------------------------- Earley


def _nullable(g: Grammar) -> set[str]:
    nullable: set[str] = set()
    changed = True
    while changed:
        changed = False
        for name, alts in g.rules.items():
            if name not in nullable and any(all(s in nullable for s in a) for a in alts):
                nullable.add(name)
                changed = True
    return nullable


def accepts(g: Grammar, text: str) -> bool:
    """Whether grammar ``g`` (terminals at JSON lexeme boundaries) accepts ``text``."""
    toks = lex(text)
    if toks is None:
        return False
    nullable = _nullable(g)
    cache: dict[tuple[str, str], bool] = {}

    def tmatch(name: str, tok: str) -> bool:
        key = (name, tok)
        if key not in cache:
            cache[key] = term_matches(g.terminals[name], tok)
        return cache[key]

    n = len(toks)
    sets: list[dict] = [dict() for _ in range(n + 1)]  # item -> None, item = (rule, alt, dot, origin)

    def add(k: int, item, agenda):
        if item not in sets[k]:
            sets[k][item] = None
            agenda.append(item)

    for ai in range(len(g.rules[g.start])):
        sets[0][(g.start, ai, 0, 0)] = None
    for k in range(n + 1):
        agenda = list(sets[k])
        completed_at_k: dict[str, bool] = {}
        while agenda:
            item = agenda.pop()
            rule, ai, dot, origin = item
            alt = g.rules[rule][ai]
            if dot < len(alt):
                sym = alt[dot]
                if sym in g.rules:
                    for bi in range(len(g.rules[sym])):
                        add(k, (sym, bi, 0, k), agenda)
                    if sym in nullable:
                        add(k, (rule, ai, dot + 1, origin), agenda)
                elif k < n and tmatch(sym, toks[k]):
                    sets[k + 1][(rule, ai, dot + 1, origin)] = None
            else:
                for it2 in list(sets[origin]):
                    r2, a2, d2, o2 = it2
                    alt2 = g.rules[r2][a2]
                    if d2 < len(alt2) and alt2[d2] == rule:
                        add(k, (r2, a2, d2 + 1, o2), agenda)
        if k < n and not sets[k + 1]:
            return False
    return any(r == g.start and d == len(g.rules[r][a]) and o == 0 for (r, a, d, o) in sets[n])


# ---------------------------------------------------------------------- basic tests


def test_lexer_attaches_whitespace_to_punctuation():
    assert lex('{"a": [1, 2], "b": {}}') == ['{', '"a"', ': ', '[', '1', ', ', '2', ']', ', ', '"b"', ': ', '{}', '}']
    assert lex(' [ ] ') == [' ', '[ ]', ' ']


def test_any_schema_accepts_json_and_rejects_garbage():
    g, _ = json_schema_to_grammar({}, whitespace="json")
    for text in ['1', '"x"', 'null', '{"a": [1, {"b": null}], "c": "d"}', '[]', ' {} ', '-0.5e+3']:
        assert accepts(g, text), text
    for text in ['01', '{"a" 1}', '[1,]', "'x'", '{,}', 'nul']:
        assert not accepts(g, text), text


def test_whitespace_policies():
    schema = {"type": "object", "properties": {"a": {"type": "array", "items": {"type": "integer"}}}}
    g, _ = json_schema_to_grammar(schema, whitespace="compact")
    assert accepts(g, '{"a":[1,2]}')
    assert not accepts(g, '{"a": [1, 2]}')
    g, _ = json_schema_to_grammar(schema, whitespace=2)
    assert accepts(g, '{"a":  [1,2]}')
    assert not accepts(g, '{"a":   [1,2]}')
    g, _ = json_schema_to_grammar(schema, whitespace="json")
    assert accepts(g, '{ "a" :\n\t[ 1 , 2 ] }')
    g, _ = json_schema_to_grammar(schema)  # "bounded": what json.dumps writes, no more
    assert accepts(g, '{"a": [1, 2]}') and accepts(g, '{\n  "a": [\n    1,\n    2\n  ]\n}')
    assert not accepts(g, '{ "a" :\n\t[ 1 , 2 ] }') and not accepts(g, ' {"a": []}')


def test_unsatisfiable():
    for schema in [False, {"enum": []}, {"allOf": [{"type": "string"}, {"type": "integer"}]},
                   {"type": "integer", "minimum": 5, "maximum": 3},
                   {"type": "object", "properties": {"a": False}, "required": ["a"]}]:
        with pytest.raises(UnsatisfiableError):
            json_schema_to_grammar(schema)


def test_object_grammar_is_linear_in_properties():
    props = {f"p{i}": {"type": "integer"} for i in range(300)}
    g, _ = json_schema_to_grammar({"type": "object", "properties": props, "additionalProperties": False})
    assert len(g.rules) < 4 * 300 + 50
    inst = {f"p{i}": i for i in range(0, 300, 7)}
    assert accepts(g, json.dumps(inst))
    assert not accepts(g, json.dumps(dict(reversed(list(inst.items())))))


# ---------------------------------------------------------------------- MaskBench sample


def _dev_rows():
    if not os.path.exists(DEV):
        pytest.skip("MaskBench dev data not available")
    with gzip.open(DEV, "rt") as fh:
        return [json.loads(line) for line in fh]


def _schema_orders(s, out):
    if isinstance(s, dict):
        p = s.get("properties")
        if isinstance(p, dict) and p:
            out.append(list(p))
        for k, v in s.items():
            if k not in ("enum", "const", "default", "examples"):
                _schema_orders(v, out)
    elif isinstance(s, list):
        for v in s:
            _schema_orders(v, out)


def _objects(d, out):
    if isinstance(d, dict):
        out.append(list(d))
        for v in d.values():
            _objects(v, out)
    elif isinstance(d, list):
        for v in d:
            _objects(v, out)


def out_of_schema_order(schema, data) -> bool:
    """Whether some object in ``data`` lists its keys against the order of a ``properties`` in ``schema``.

    The front door requires schema order (a documented narrowing); such valid instances
    are rejected on purpose.
    """
    orders: list = []
    _schema_orders(schema, orders)
    objs: list = []
    _objects(data, objs)
    for keys in objs:
        for order in orders:
            pos = {k: i for i, k in enumerate(order)}
            idx = [pos[k] for k in keys if k in pos]
            if len(idx) >= 2 and idx != sorted(idx):
                return True
    return False


def check_row(row, strict=True):
    """(compiled, list of failures) for one MaskBench row."""
    try:
        g, _ = json_schema_to_grammar(row["schema"], strict=strict)
    except (SchemaError, CompileLimitError, UnsatisfiableError):
        return False, []
    failures = []
    for t in row["tests"]:
        text = json.dumps(t["data"], ensure_ascii=False)
        if len(text) > 4000:
            continue
        if t["valid"] and out_of_schema_order(row["schema"], t["data"]):
            continue
        if accepts(g, text) != t["valid"]:
            failures.append((t["valid"], text[:200]))
    return True, failures


def test_maskbench_sample_sound_and_complete():
    rows = [r for r in _dev_rows() if r["tests"]]
    rng = random.Random(1234)
    sample = rng.sample(rows, 200)
    compiled = 0
    bad = []
    for row in sample:
        ok, failures = check_row(row)
        compiled += ok
        if failures:
            bad.append((row["id"], failures[:2]))
    assert compiled >= 170, compiled
    assert not bad, bad[:5]


# ---------------------------------------------------------------------- end to end through the engine


def _engine_accepts(compiled, text: str) -> bool:
    m = compiled.matcher()
    return m.advance_bytes(text.encode("utf-8")) and m.is_accepting()


def test_engine_agrees_on_maskbench_sample():
    """constrain.compile on the front door's grammars: valid accepted, invalid rejected."""
    import constrain
    from conftest import byte_vocab

    vocab = byte_vocab()
    rows = [r for r in _dev_rows() if r["tests"] and len(json.dumps(r["schema"])) < 1500]
    rng = random.Random(99)
    checked = 0
    for row in rng.sample(rows, 12):
        try:
            compiled = constrain.compile(row["schema"], vocab, cache=False)
        except (SchemaError, CompileLimitError, UnsatisfiableError):
            continue
        for t in row["tests"]:
            if t["valid"] and out_of_schema_order(row["schema"], t["data"]):
                continue
            text = json.dumps(t["data"], ensure_ascii=False)
            assert _engine_accepts(compiled, text) == t["valid"], (row["id"], text[:200])
            checked += 1
    assert checked >= 20
