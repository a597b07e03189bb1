"""Regex benchmark: realistic patterns on a real vocabulary, every engine in the same run.

Usage (from the repository root):

    .venv/bin/python benchmarks/bench_regex.py
    .venv/bin/python benchmarks/bench_regex.py --patterns email,uuid --samples 3
    .venv/bin/python benchmarks/bench_regex.py --engines constrain,xgrammar --tokenizer smollm2

For each pattern a few matching strings are drawn from the pattern itself (a small random
generator over Python's own regex parse tree), checked with ``re.fullmatch``, tokenized
and walked through every engine: fill the mask (timed), check the token is allowed,
advance, and at the end check EOS is allowed. A few near-miss strings (one edit away,
checked not to match) must be rejected. Correctness is reported next to the timings; a
figure from an engine that got a string wrong is marked.
"""

from __future__ import annotations

import argparse
import random
import re
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _harness  # noqa: E402

try:  # Python 3.11+
    from re import _constants as sre_constants
    from re import _parser as sre_parse
except ImportError:  # pragma: no cover
    import sre_constants  # type: ignore[no-redef]
    import sre_parse  # type: ignore[no-redef]

HEX = "[0-9a-fA-F]"
H4 = f"{HEX}{{1,4}}"


def word_list(n: int = 1000, seed: int = 1234) -> list[str]:
    """n distinct pronounceable lowercase words, the same on every machine."""
    rng = random.Random(seed)
    onsets = ["b", "c", "d", "f", "g", "h", "j", "k", "l", "m", "n", "p", "r", "s", "t", "v", "w", "z",
              "br", "cl", "dr", "fl", "gr", "pl", "st", "tr", "sh", "ch", "th", "sp"]
    vowels = ["a", "e", "i", "o", "u", "ai", "ea", "ou", "io"]
    codas = ["", "", "n", "r", "s", "t", "l", "m", "nd", "st", "ck"]
    words: list[str] = []
    seen = set()
    while len(words) < n:
        w = "".join(rng.choice(onsets) + rng.choice(vowels) for _ in range(rng.randint(1, 3))) + rng.choice(codas)
        if w not in seen:
            seen.add(w)
            words.append(w)
    return words


def patterns() -> dict[str, str]:
    words = "(" + "|".join(word_list()) + ")"
    date = "[0-9]{4}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])"
    time_ = "([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](\\.[0-9]{1,6})?"
    octet = "(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"
    ipv6 = "|".join([
        f"({H4}:){{7}}{H4}",
        f"({H4}:){{1,7}}:",
        f"({H4}:){{1,6}}:{H4}",
        f"({H4}:){{1,5}}(:{H4}){{1,2}}",
        f"({H4}:){{1,4}}(:{H4}){{1,3}}",
        f"({H4}:){{1,3}}(:{H4}){{1,4}}",
        f"({H4}:){{1,2}}(:{H4}){{1,5}}",
        f"{H4}:(:{H4}){{1,6}}",
        f":((:{H4}){{1,7}}|:)",
    ])
    return {
        "email": "[a-zA-Z0-9._%+-]{1,40}@[a-zA-Z0-9-]{1,30}(\\.[a-zA-Z0-9-]{1,30}){0,3}\\.[a-zA-Z]{2,12}",
        "iso_date": date,
        "iso_datetime": f"{date}T{time_}(Z|[+-]([01][0-9]|2[0-3]):[0-5][0-9])",
        "uuid": "[0-9a-f]{8}-[0-9a-f]{4}-[1-5][0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}",
        "ipv4": f"({octet}\\.){{3}}{octet}",
        "ipv6": f"({ipv6})",
        "url": ("https?://[a-z0-9-]{1,30}(\\.[a-z0-9-]{1,30}){1,3}(:[0-9]{2,5})?"
                "(/[a-zA-Z0-9._~-]{1,20}){0,6}(\\?[a-z_]{1,12}=[a-zA-Z0-9._~-]{0,20}(&[a-z_]{1,12}=[a-zA-Z0-9._~-]{0,20}){0,4})?"),
        "phone": "(\\+[1-9][0-9]{0,2}[ .-]?)?(\\([0-9]{3}\\)|[0-9]{3})[ .-]?[0-9]{3}[ .-]?[0-9]{4}",
        "words_1000": f"{words}( {words}){{0,7}}",
        "free_text_500": '[^"]{0,500}',
        "nested_repeats": "([A-Z][a-z]{1,10}( [a-z]{1,10}){0,6}[.!?] ?){1,4}",
        "number_grouped": "-?[1-9][0-9]{0,2}(,[0-9]{3}){0,4}(\\.[0-9]{1,4})?",
    }


# ----------------------------------------------------------------- sample generation

_PRINTABLE = [chr(c) for c in range(0x20, 0x7F)] + list("éüßñøçœ—“”€中文字日本語Ωπ😀")


class _Sampler:
    """Random strings matching a pattern, drawn from Python's own parse of it."""

    def __init__(self, rng: random.Random, max_extra_repeat: int = 12):
        self.rng = rng
        self.max_extra = max_extra_repeat

    def sample(self, pattern: str) -> str:
        return "".join(self._seq(sre_parse.parse(pattern)))

    def _seq(self, items) -> list[str]:
        out: list[str] = []
        for op, av in items:
            out.extend(self._one(op, av))
        return out

    def _class_chars(self, items) -> tuple[set[str], bool]:
        chars: set[str] = set()
        negate = False
        for op, av in items:
            if op is sre_constants.NEGATE:
                negate = True
            elif op is sre_constants.LITERAL:
                chars.add(chr(av))
            elif op is sre_constants.RANGE:
                lo, hi = av
                chars.update(chr(c) for c in range(lo, min(hi, lo + 2000) + 1))
            elif op is sre_constants.CATEGORY:
                if av is sre_constants.CATEGORY_DIGIT:
                    chars.update("0123456789")
                elif av is sre_constants.CATEGORY_SPACE:
                    chars.update(" \t\n")
                elif av is sre_constants.CATEGORY_WORD:
                    chars.update("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_")
                else:
                    raise ValueError(f"unsupported category {av}")
            else:
                raise ValueError(f"unsupported class item {op}")
        return chars, negate

    def _one(self, op, av) -> list[str]:
        rng = self.rng
        if op is sre_constants.LITERAL:
            return [chr(av)]
        if op is sre_constants.NOT_LITERAL:
            return [rng.choice([c for c in _PRINTABLE if c != chr(av)])]
        if op is sre_constants.ANY:
            return [rng.choice(_PRINTABLE)]
        if op is sre_constants.IN:
            chars, negate = self._class_chars(av)
            pool = [c for c in _PRINTABLE if c not in chars] if negate else sorted(chars)
            return [rng.choice(pool)]
        if op is sre_constants.BRANCH:
            return self._seq(rng.choice(av[1]))
        if op is sre_constants.SUBPATTERN:
            return self._seq(av[-1])
        if op in (sre_constants.MAX_REPEAT, sre_constants.MIN_REPEAT):
            lo, hi, body = av
            hi = lo + self.max_extra if hi is sre_constants.MAXREPEAT else hi
            span = hi - lo
            # Long bounded repeats (e.g. {0,500}) get a spread of lengths up to the bound.
            n = lo + (rng.randint(0, span) if span <= self.max_extra else int(span * rng.random() ** 0.7))
            out: list[str] = []
            for _ in range(n):
                out.extend(self._seq(body))
            return out
        if op is sre_constants.AT:
            return []
        raise ValueError(f"unsupported regex construct {op}")


def make_samples(name: str, pattern: str, n_valid: int, n_invalid: int, seed: int) -> list[tuple[str, bool]]:
    """n_valid distinct matching strings and n_invalid near misses, all checked with re."""
    rng = random.Random(f"{seed}:{name}")
    sampler = _Sampler(rng)
    compiled = re.compile(pattern, re.DOTALL)
    valid: list[str] = []
    for _ in range(50 * n_valid):
        s = sampler.sample(pattern)
        if compiled.fullmatch(s) is None:
            raise RuntimeError(f"sampler produced a non-matching string for {name}: {s!r}")
        if s and s not in valid:
            valid.append(s)
        if len(valid) >= n_valid:
            break
    invalid: list[str] = []
    for _ in range(200 * max(n_invalid, 1)):
        if len(invalid) >= n_invalid or not valid:
            break
        s = rng.choice(valid)
        i = rng.randrange(len(s) + 1)
        edit = rng.choice(("insert", "delete", "replace"))
        c = rng.choice('"!#,:;/ -_Zz9\n')
        t = s[:i] + c + s[i:] if edit == "insert" else s[:i] + s[i + 1:] if edit == "delete" else s[:i] + c + s[i + 1:]
        if compiled.fullmatch(t) is None and t not in invalid:
            invalid.append(t)
    return [(s, True) for s in valid] + [(s, False) for s in invalid]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--engines", help="comma-separated (default: all installed)")
    ap.add_argument("--patterns", help="comma-separated subset of: " + ",".join(patterns()))
    ap.add_argument("--samples", type=int, default=5, help="matching strings per pattern")
    ap.add_argument("--invalid", type=int, default=2, help="near-miss strings per pattern")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--ttfm-repeat", type=int, default=21,
                    help="compiles per pattern and engine, each from scratch (in-process caches dropped); "
                         "compile time and TTFM are their median, 'first TTFM' the first one")
    ap.add_argument("--ttfm-budget", type=float, default=2.0,
                    help="seconds of compiles per pattern and engine after which no new one starts "
                         "(once three are done): slow compiles are repeated fewer times")
    ap.add_argument("--timeout", type=float, default=60.0, help="seconds per pattern and engine")
    ap.add_argument("--max-rss-mb", type=int, default=8000)
    ap.add_argument("--tokenizer", default="qwen2", choices=_harness.TOKENIZERS)
    ap.add_argument("--quiet", action="store_true")
    args = ap.parse_args(argv)

    _harness.single_thread_env()
    engines = _harness.parse_engines(args.engines)
    pats = patterns()
    if args.patterns:
        wanted = [p.strip() for p in args.patterns.split(",") if p.strip()]
        bad = [p for p in wanted if p not in pats]
        if bad:
            raise SystemExit(f"unknown pattern(s) {bad}")
        pats = {p: pats[p] for p in wanted}
    print(_harness.machine_info(engines))
    tok = _harness.load_tokenizer(args.tokenizer)
    jobs = []
    for name, pattern in pats.items():
        samples = make_samples(name, pattern, args.samples, args.invalid, args.seed)
        jobs.append({"id": name, "kind": "regex", "spec": pattern, "ttfm_repeat": args.ttfm_repeat,
                     "ttfm_budget_s": args.ttfm_budget,
                     "tests": [{"valid": v, "tokens": _harness.encode(tok, s)} for s, v in samples]})
    n_tok = sum(len(t["tokens"]) for j in jobs for t in j["tests"])
    print(f"data    : {len(jobs)} patterns, {sum(len(j['tests']) for j in jobs)} strings "
          f"({n_tok:,} tokens); tokenizer {args.tokenizer} ({len(tok):,} ids); timeout {args.timeout:g} s")
    print()
    results, infos = _harness.run_engines(engines, jobs, tokenizer=args.tokenizer, warmup_kind="regex",
                                 timeout=args.timeout, max_rss_mb=args.max_rss_mb, quiet=args.quiet)
    _harness.report_items(list(pats), engines, results, infos, "pattern")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
