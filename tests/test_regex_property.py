"""Property tests: compiled byte DFAs agree with Python's ``re`` (and ``json``) exactly."""

from __future__ import annotations

import json
import re
from unittest.mock import patch

from hypothesis import HealthCheck, given, reject, settings
from hypothesis import strategies as st

from constrain.automata import regex as regex_mod
from constrain.automata.regex import compile_regex as _compile
from constrain.errors import CompileLimitError


def compile_regex(pattern: str, **kw):
    # A few random patterns (nested repeats of broad classes under search) have huge
    # DFAs; they are skipped rather than allowed to stall the suite.
    try:
        return _compile(pattern, max_states=20_000, time_limit=3.0, **kw)
    except CompileLimitError:
        reject()

ALPHABET = ["a", "b", "c", "A", "B", "k", "K", "s", "\u017f", "\u00e9", "\u00c9", "\u00df", "\u03c3", "\u03a3",
            "\u03c2", "\u0434", "\u0414", "1", "7", "\u0663", " ", "\t", "\n", "\u00a0", ".", "-", "_", "\u20ac",
            "\U0001F600", "\u212a", '"', "\\", "/"]

# characters on which ECMA classes (ascii=True) and re.ASCII agree
ASCII_SAFE = [c for c in ALPHABET if c not in ("\u00a0",)]

CLASS_ITEMS = ["a", "b-d", "A-C", "\\d", "\\w", "\\s", "\\D", "\\W", "\\S", "\u00e9", "\u03c3", "0-9", "\\-", "\\n",
               "\\u00c0-\\u00ff", "\\x41", ".", "_", "\\U0001F600", "\u0400-\u04ff"]


def _lit(ch: str) -> str:
    return re.escape(ch)


@st.composite
def regex_ast(draw, depth=0):
    """A random regex AST; ``render`` turns it into a pattern, ``sample`` into likely matches."""
    leaf_kinds = ["lit", "lit", "class", "dot", "short"]
    kinds = leaf_kinds + (["cat", "cat", "alt", "rep", "group", "icase"] if depth < 3 else [])
    kind = draw(st.sampled_from(kinds))
    if kind == "lit":
        return ("lit", draw(st.sampled_from(ALPHABET)))
    if kind == "class":
        items = draw(st.lists(st.sampled_from(CLASS_ITEMS), min_size=1, max_size=3))
        return ("class", draw(st.booleans()), tuple(items))
    if kind == "dot":
        return ("dot",)
    if kind == "short":
        return ("short", draw(st.sampled_from(["\\d", "\\w", "\\s", "\\D", "\\W", "\\S"])))
    if kind == "cat":
        return ("cat", tuple(draw(st.lists(regex_ast(depth + 1), min_size=2, max_size=3))))
    if kind == "alt":
        return ("alt", tuple(draw(st.lists(regex_ast(depth + 1), min_size=2, max_size=3))))
    if kind == "group":
        return ("group", draw(st.sampled_from(["(", "(?:", "(?P<g{}>"])), draw(regex_ast(depth + 1)))
    if kind == "icase":
        return ("icase", draw(regex_ast(depth + 1)))
    lo = draw(st.integers(0, 2))
    form = draw(st.sampled_from(["*", "+", "?", "{m}", "{m,}", "{m,n}", "{,n}"]))
    hi = lo + draw(st.integers(0, 2))
    lazy = draw(st.booleans())
    return ("rep", draw(regex_ast(depth + 1)), form, lo, hi, lazy)


def render(node, counter=None) -> str:
    counter = counter if counter is not None else [0]
    kind = node[0]
    if kind == "lit":
        return _lit(node[1])
    if kind == "class":
        return "[" + ("^" if node[1] else "") + "".join(node[2]) + "]"
    if kind == "dot":
        return "."
    if kind == "short":
        return node[1]
    if kind == "cat":
        return "".join(_atomic(c, counter) if c[0] == "alt" else render(c, counter) for c in node[1])
    if kind == "alt":
        return "|".join(render(c, counter) for c in node[1])
    if kind == "group":
        counter[0] += 1
        return node[1].format(counter[0]) + render(node[2], counter) + ")"
    if kind == "icase":
        return "(?i:" + render(node[1], counter) + ")"
    _, x, form, lo, hi, lazy = node
    q = {"*": "*", "+": "+", "?": "?", "{m}": f"{{{lo}}}", "{m,}": f"{{{lo},}}", "{m,n}": f"{{{lo},{hi}}}",
         "{,n}": f"{{,{hi}}}"}[form]
    return _atomic(x, counter) + q + ("?" if lazy else "")


def _atomic(node, counter) -> str:
    if node[0] in ("lit", "class", "dot", "short", "group"):
        return render(node, counter)
    return "(?:" + render(node, counter) + ")"


def _members(pattern: str, flags: int) -> list[str]:
    rx = re.compile(pattern, flags)
    return [c for c in ALPHABET if rx.fullmatch(c)]


def sample(node, draw, icase=False, flags=0) -> str:
    """A string built to match (anchors and classes aside, it usually does)."""
    kind = node[0]
    if kind == "lit":
        ch = node[1]
        return ch.swapcase() if icase and len(ch.swapcase()) == 1 and draw(st.booleans()) else ch
    if kind in ("class", "dot", "short"):
        opts = _members(("(?i:%s)" if icase else "%s") % render(node), flags)
        return draw(st.sampled_from(opts)) if opts else ""
    if kind == "cat":
        return "".join(sample(c, draw, icase, flags) for c in node[1])
    if kind == "alt":
        return sample(draw(st.sampled_from(node[1])), draw, icase, flags)
    if kind == "group":
        return sample(node[2], draw, icase, flags)
    if kind == "icase":
        return sample(node[1], draw, True, flags)
    _, x, form, lo, hi, _ = node
    n = draw(st.integers(lo if form not in ("*", "?", "{,n}") else 0, hi + 2))
    return "".join(sample(x, draw, icase, flags) for _ in range(n))


random_text = st.text(alphabet=st.sampled_from(ALPHABET), max_size=8)

SETTINGS = settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@SETTINGS
@given(st.data())
def test_fullmatch_agrees_with_re(data):
    ast = data.draw(regex_ast())
    anchored = data.draw(st.sampled_from(["", "^", "$", "^$"]))
    pattern = ("^" if "^" in anchored else "") + render(ast) + ("$" if anchored.endswith("$") else "")
    ignore = data.draw(st.booleans())
    flags = re.IGNORECASE if ignore else 0
    dfa = compile_regex(pattern, ignore_case=ignore)
    rx = re.compile(pattern, flags)
    strings = data.draw(st.lists(random_text, min_size=15, max_size=15))
    strings += [sample(ast, data.draw, ignore, flags) for _ in range(15)]
    strings += [s + "\n" for s in strings[15:18]]
    for s in strings:
        assert dfa.accepts(s.encode("utf-8")) == bool(rx.fullmatch(s)), (pattern, ignore, s)


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_search_agrees_with_re(data):
    ast = data.draw(regex_ast())
    left = data.draw(st.sampled_from(["", "^"]))
    right = data.draw(st.sampled_from(["", "$"]))
    body = render(ast)
    pattern = left + body + right
    if data.draw(st.booleans()):
        pattern = "(?:^" + body + "|x" + right + ")"  # anchors inside an alternation
    dfa = compile_regex(pattern, search=True)
    rx = re.compile(pattern)
    strings = data.draw(st.lists(random_text, min_size=10, max_size=10))
    strings += ["ab" + sample(ast, data.draw) + "c" for _ in range(5)]
    strings += [sample(ast, data.draw) for _ in range(5)]
    for s in strings:
        if s.endswith("\n"):
            continue  # Python's '$' also matches before a final newline; ECMA's does not
        assert dfa.accepts(s.encode("utf-8")) == bool(rx.search(s)), (pattern, s)


@SETTINGS
@given(st.data())
def test_ascii_mode_agrees_with_re_ascii(data):
    ast = data.draw(regex_ast())
    pattern = render(ast)
    ignore = data.draw(st.booleans())
    flags = re.ASCII | (re.IGNORECASE if ignore else 0)
    dfa = compile_regex(pattern, ascii=True, ignore_case=ignore)
    rx = re.compile(pattern, flags)
    text = st.text(alphabet=st.sampled_from(ASCII_SAFE), max_size=8)
    strings = data.draw(st.lists(text, min_size=10, max_size=10))
    strings += [s for s in (sample(ast, data.draw, ignore, flags) for _ in range(10)) if "\u00a0" not in s]
    for s in strings:
        assert dfa.accepts(s.encode("utf-8")) == bool(rx.fullmatch(s)), (pattern, s)


def _json_encodings(s: str, draw) -> list[str]:
    out = [json.dumps(s)[1:-1], json.dumps(s, ensure_ascii=False)[1:-1]]
    mixed = []
    for ch in s:
        how = draw(st.integers(0, 3))
        if ch in '"\\' or ord(ch) < 0x20:
            how = max(how, 1)
        if how == 0:
            mixed.append(ch)
        elif how == 1:
            mixed.append(json.dumps(ch)[1:-1] if ch != "/" else "\\/")
        else:
            units = ch.encode("utf-16-be")
            hexes = ["%04x" % int.from_bytes(units[i : i + 2], "big") for i in range(0, len(units), 2)]
            mixed.append("".join("\\u" + (h.upper() if how == 3 else h) for h in hexes))
    out.append("".join(mixed))
    return out


JSON_JUNK = ['"', "\\", "\\u", "\\ud83d", "\\ude00", "\\x", "\x01", "\\u00E9", "\\/", "a", "\\n"]


@SETTINGS
@given(st.data())
def test_json_string_agrees_with_json_and_re(data):
    ast = data.draw(regex_ast())
    pattern = render(ast)
    dfa = compile_regex(pattern, json_string=True)
    rx = re.compile(pattern)
    texts = data.draw(st.lists(random_text, min_size=3, max_size=3)) + [sample(ast, data.draw) for _ in range(3)]
    for s in texts:
        expected = bool(rx.fullmatch(s))
        for body in _json_encodings(s, data.draw):
            assert dfa.accepts(body.encode("utf-8")) == expected, (pattern, s, body)
    junk = data.draw(st.lists(st.lists(st.sampled_from(JSON_JUNK + ALPHABET), max_size=5), min_size=5, max_size=5))
    for parts in junk:
        body = "".join(parts)
        try:
            decoded = json.loads('"' + body + '"')
        except ValueError:
            decoded = None
        valid = decoded is not None and not any(0xD800 <= ord(c) <= 0xDFFF for c in decoded)
        expected = valid and bool(rx.fullmatch(decoded))
        assert dfa.accepts(body.encode("utf-8")) == expected, (pattern, body)


@st.composite
def repeated_alternation(draw):
    """A counted repeat of an alternation (or of a group holding one), in some context."""
    branches = draw(st.lists(regex_ast(2), min_size=2, max_size=4))
    body = ("alt", tuple(branches))
    if draw(st.booleans()):
        body = ("cat", (("lit", draw(st.sampled_from(ALPHABET))), ("group", "(", body)))
    lo = draw(st.integers(0, 2))
    hi = lo + draw(st.integers(0, 3))
    form = draw(st.sampled_from(["{m,n}", "{m}", "{m,}", "*", "+"]))
    rep = ("rep", body, form, lo, hi, False)
    before = draw(st.sampled_from([None, ("lit", "a"), body]))
    return ("cat", ((before,) if before else ()) + (rep, ("lit", draw(st.sampled_from(ALPHABET)))))


def sub_expressions_from(size):
    """Compile every repeated or recurring sub-expression of at least ``size`` estimated
    NFA states to its own DFA (the default keeps this to big ones)."""
    return patch.object(regex_mod, "_SUB_MIN", size)


@SETTINGS
@given(st.data())
def test_repeats_of_alternations_agree_with_re(data):
    ast = data.draw(repeated_alternation())
    pattern = render(ast)
    ignore = data.draw(st.booleans())
    flags = re.IGNORECASE if ignore else 0
    dfa = compile_regex(pattern, ignore_case=ignore)
    json_dfa = compile_regex(pattern, json_string=True)
    with sub_expressions_from(data.draw(st.sampled_from([1, 4, 16]))):
        assert compile_regex(pattern, ignore_case=ignore) == dfa, pattern
        assert compile_regex(pattern, json_string=True) == json_dfa, pattern
    rx = re.compile(pattern, flags)
    strings = data.draw(st.lists(random_text, min_size=10, max_size=10))
    strings += [sample(ast, data.draw, ignore, flags) for _ in range(20)]
    for s in strings:
        assert dfa.accepts(s.encode("utf-8")) == bool(rx.fullmatch(s)), (pattern, ignore, s)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_sub_expression_dfas_give_the_same_dfa(data):
    ast = data.draw(regex_ast())
    pattern = render(ast)
    if data.draw(st.booleans()):
        pattern = "(?:" + pattern + "|x$)" + data.draw(st.sampled_from(["{2}", "{1,3}", "*", ""]))
    kw = data.draw(st.sampled_from([{}, {"search": True}, {"json_string": True}, {"ascii": True}]))
    expected = compile_regex(pattern, **kw)
    with sub_expressions_from(1):
        assert compile_regex(pattern, **kw) == expected, (pattern, kw)


def no_tries():
    """Build every alternation branch by branch (string branches as a trie is the default
    for alternations of at least regex._TRIE_MIN branches)."""
    return patch.object(regex_mod, "_TRIE_MIN", 10**9)


@SETTINGS
@given(st.data())
def test_string_alternations_agree_with_re(data):
    # many string branches (duplicates, prefixes of each other, the empty string) among
    # a few others, in some context
    words = data.draw(st.lists(st.text(alphabet="abc", max_size=4), min_size=8, max_size=40))
    others = data.draw(st.lists(st.sampled_from(["[ab]c", "a+", "\u00e9", "(?:b|cc)", "\\d", "c$", "^a", "(?:ab)?"]),
                                max_size=3))
    branches = data.draw(st.permutations([re.escape(w) for w in words] + others))
    alt = "(?:" + "|".join(branches) + ")"
    context = data.draw(st.sampled_from(["{}", "{}{{2,3}}", "x{}y", "{}( {}){{0,2}}", "(?:{}|c)*"]))
    pattern = context.replace("{}", alt).replace("{{", "{").replace("}}", "}") if "{{" in context \
        else context.format(alt, alt)
    kw = data.draw(st.sampled_from([{}, {"ignore_case": True}, {"search": True}, {"json_string": True}]))
    dfa = compile_regex(pattern, **kw)
    with no_tries():
        assert compile_regex(pattern, **kw) == dfa, (pattern, kw)
    with sub_expressions_from(16):  # recurring alternations counted once, compiled on their own
        assert compile_regex(pattern, **kw) == dfa, (pattern, kw)
    if kw.get("json_string"):
        return
    rx = re.compile(pattern, re.IGNORECASE if kw.get("ignore_case") else 0)
    match = rx.search if kw.get("search") else rx.fullmatch
    strings = data.draw(st.lists(st.text(alphabet="abcxy C\u00e9", max_size=8), min_size=10, max_size=10))
    strings += words + [a + " " + b for a, b in zip(words, words[1:])]
    for s in strings:
        assert dfa.accepts(s.encode("utf-8")) == bool(match(s)), (pattern, kw, s)
