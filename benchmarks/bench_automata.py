"""Compile times of byte DFAs for terminals as the front doors build them.

Run: ``python benchmarks/bench_automata.py [--repeat N] [--filter TEXT]``. Every case is
compiled once to warm up (numba, Unicode tables), then timed ``N`` times from a cold
terminal cache; the script prints the best and median time in ms and the DFA size, and
checks a few members / non-members of each language before timing.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import statistics
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from constrain.automata import regex as _regex  # noqa: E402
from constrain.automata.regex import compile_terminal  # noqa: E402
from constrain.errors import CompileLimitError  # noqa: E402
from constrain.frontends.json_schema.formats import FORMATS  # noqa: E402
from constrain.grammar.ir import Concat, Difference, Intersect, Lit, Union_  # noqa: E402
from constrain.grammar.ir import RegexTerm as Regex  # noqa: E402

JSON_STRING = r'"(?:[^"\\\x00-\x1f]|\\["\\/bfnrt]|\\u[0-9a-fA-F]{4})*"'

_WORDS = [
    "apiVersion", "kind", "metadata", "spec", "status", "name", "namespace", "labels", "annotations",
    "replicas", "selector", "template", "containers", "image", "ports", "env", "resources", "limits",
    "requests", "volumeMounts", "volumes", "args", "command", "livenessProbe", "readinessProbe",
]


def _keys(n: int) -> list[str]:
    out = list(_WORDS)
    i = 0
    while len(out) < n:
        out.append(f"{_WORDS[i % len(_WORDS)]}{i // len(_WORDS)}_{i % 7}")
        i += 1
    return out[:n]


def _quoted(inner):
    return Concat((Lit('"'), inner, Lit('"')))


def _key_exclusion(n: int):
    # As the JSON Schema front door writes additionalProperties keys: any JSON string but
    # the declared names (each spelled with or without escapes).
    regs = tuple(Regex(re.escape(k), json_string=True) for k in _keys(n))
    return Difference(Regex(JSON_STRING), _quoted(Union_(regs)))


def _format(name: str):
    parts = [Regex(r, ascii=True, json_string=True) for r in FORMATS[name]]
    return _quoted(parts[0] if len(parts) == 1 else Intersect(tuple(parts)))


def _pattern(p: str):
    return _quoted(Regex(p, ascii=True, search=True, json_string=True))


def _words(n: int) -> list[str]:
    import random

    rng = random.Random(7)
    letters = "abcdefghijklmnopqrstuvwxyz"
    out = set()
    while len(out) < n:
        out.add("".join(rng.choice(letters) for _ in range(rng.randint(3, 10))))
    return sorted(out)


# (name, terminal, members, non-members)
CASES = [
    ("json string regex", Regex(JSON_STRING), [b'""', b'"a\\u00e9"'], [b'"\\x"']),
    ("string {0,128} json", _quoted(Regex(r"[\s\S]{0,128}", json_string=True)), [b'"ab"'], [b'"\n"']),
    ("string {0,256} json", _quoted(Regex(r"[\s\S]{0,256}", json_string=True)), [b'"ab"'], [b'"' + b"a" * 257 + b'"']),
    ("string {0,1024} json", _quoted(Regex(r"[\s\S]{0,1024}", json_string=True)), [b'"ab"'], [b'"\\q"']),
    ("string {0,2000} json", _quoted(Regex(r"[\s\S]{0,2000}", json_string=True)), [b'"' + b"x" * 2000 + b'"'],
     [b'"' + b"x" * 2001 + b'"']),
    ("[^\"]{0,500}", Regex(r'[^"]{0,500}'), [b"abc"], [b'a"']),
    ("keys minus lits x100", Difference(Regex(JSON_STRING), Union_(tuple(Lit(json.dumps(k)) for k in _keys(100)))),
     [b'"apiVersionX"'], [b'"apiVersion"']),
    ("keys minus json x10", _key_exclusion(10), [b'"foo"'], [b'"kind"', b'"\\u006bind"']),
    ("keys minus json x100", _key_exclusion(100), [b'"foo"'], [b'"kind"']),
    ("keys minus json x500", _key_exclusion(500), [b'"foo"'], [b'"kind"']),
    ("enum x50", Union_(tuple(Lit(json.dumps(w)) for w in _words(50))), [b'"' + _words(50)[3].encode() + b'"'], [b'""']),
    ("alternation 1000 words", Regex("|".join(_words(1000))), [_words(1000)[5].encode()], [b"zzzzzzzzzzzzzz"]),
    ("date-time unicode \\d", Regex(FORMATS["date-time"][0].replace("[0-9]", r"\d")), [b"2020-02-29T10:00:00Z"],
     [b"2021-02-29T10:00:00Z"]),
    ("format date", _format("date"), [b'"2024-01-31"'], [b'"2024-02-30"']),
    ("format date-time", _format("date-time"), [b'"2024-01-31T10:00:00Z"'], [b'"2024-01-31"']),
    ("format email", _format("email"), [b'"a@b.com"'], [b'"a@"']),
    ("format uuid", _format("uuid"), [b'"12345678-1234-1234-1234-123456789abc"'], [b'"1234"']),
    ("format ipv4", _format("ipv4"), [b'"10.0.0.1"'], [b'"256.0.0.1"']),
    ("format ipv6", _format("ipv6"), [b'"::1"'], [b'":::"']),
    ("format uri", _format("uri"), [b'"https://example.com/a?b=c"'], [b'"//x"']),
    ("format hostname", _format("hostname"), [b'"example.com"'], [b'"-a"']),
    ("pattern email", _pattern(r"^[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}$"), [b'"a@b.co"'], [b'"a@b"']),
    ("pattern date", _pattern(r"^\d{4}-\d{2}-\d{2}$"), [b'"2024-01-01"'], [b'"2024-1-01"']),
    ("pattern url", _pattern(r"^https?://[^\s/$.?#].[^\s]*$"), [b'"https://ab"'], [b'"ftp://ab"']),
    ("pattern uuid", _pattern(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"),
     [b'"12345678-1234-1234-1234-123456789abc"'], [b'"x"']),
    ("pattern unanchored", _pattern(r"[A-Z]{3}\d+"), [b'"xxABC12yy"'], [b'"abc"']),
    ("pattern + maxLength 64", _quoted(Intersect((Regex(r"^[a-z0-9-]+$", ascii=True, search=True, json_string=True),
                                                  Regex(r"[\s\S]{1,64}", json_string=True)))),
     [b'"a-b"'], [b'""']),
]


def _clear() -> None:
    terminals = getattr(_regex, "_TERMINALS", None)  # (older commits: _TERMINAL_CACHE)
    (terminals if terminals is not None else _regex._TERMINAL_CACHE).clear()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--filter", default="")
    args = ap.parse_args()
    print(f"# {platform.processor() or platform.machine()} python {platform.python_version()}")
    t0 = time.perf_counter()
    _clear()
    compile_terminal(Regex("a|b"))  # imports, numba kernels
    print(f"# first compile (imports / JIT load): {1000 * (time.perf_counter() - t0):.1f} ms")
    print(f"{'case':28s} {'best ms':>10s} {'median ms':>10s} {'states':>8s}")
    total = 0.0
    for name, term, good, bad in CASES:
        if args.filter and args.filter not in name:
            continue
        _clear()
        try:
            d = compile_terminal(term)
        except CompileLimitError as e:
            print(f"{name:28s} {'limit':>10s}  ({e})", flush=True)
            continue
        for s in good:
            if not d.accepts(s):
                raise SystemExit(f"{name}: rejects {s!r}")
        for s in bad:
            if d.accepts(s):
                raise SystemExit(f"{name}: accepts {s!r}")
        times = []
        for _ in range(args.repeat):
            _clear()
            t = time.perf_counter()
            d2 = compile_terminal(term)
            times.append(time.perf_counter() - t)
            if d2.key != d.key:
                raise SystemExit(f"{name}: non-deterministic result")
        best = 1000 * min(times)
        total += best
        print(f"{name:28s} {best:10.2f} {1000 * statistics.median(times):10.2f} {d.n_states:8d}", flush=True)
    print(f"{'total (best)':28s} {total:10.2f}")


if __name__ == "__main__":
    main()
