"""Grammar benchmark: constrain's bundled grammars and their examples, peers in the same run.

Usage (from the repository root):

    .venv/bin/python benchmarks/bench_grammars.py
    .venv/bin/python benchmarks/bench_grammars.py --grammars json,arithmetic --max-examples 5

For every ``constrain/grammars/<name>.lark`` with examples in
``constrain/grammars/examples/<name>.txt`` (and every ``<name>.gbnf`` beside them, fed
the examples of the same name): compile time, time to first mask and per-token mask
time over the examples, for constrain (Lark / GBNF), llguidance (its Lark dialect; GBNF
through its own ``gbnf_to_lark``) and XGrammar (``compile_lark`` / ``compile_grammar``
for GBNF). outlines-core has no grammar front end and is left out. A grammar that a peer
cannot read (another dialect, ``%import`` of constrain's package grammars) is a compile
error with the peer's message, not a crash.

Besides the valid examples, a few near misses (one edit away) that lark's own Earley
parser rejects are checked to be rejected.
"""

from __future__ import annotations

import argparse
import random
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _harness  # noqa: E402

GRAMMAR_ENGINES = ("constrain", "llguidance", "xgrammar")


def grammar_dir() -> Path | None:
    path = _harness.REPO_ROOT / "constrain" / "grammars"
    return path if path.is_dir() else None


def read_examples(root: Path, name: str) -> list[str]:
    """Examples of grammar ``name``: the package's own reader when present, else split on '%%' lines."""
    try:
        from constrain import grammars

        return list(grammars.examples(name))
    except (ImportError, AttributeError, FileNotFoundError):
        path = root / "examples" / f"{name}.txt"
        if not path.exists():
            return []
        out, cur = [], []
        for line in path.read_text(encoding="utf-8").splitlines(keepends=True):
            if line.rstrip("\r\n") == "%%":
                out.append("".join(cur))
                cur = []
            else:
                cur.append(line)
        out.append("".join(cur))
        return out


def lark_reference(text: str, root: Path):
    """lark's own Earley parser for a grammar, or None when lark cannot load it."""
    try:
        import lark

        return lark.Lark(text, start="start", parser="earley", lexer="dynamic", import_paths=[str(root)])
    except Exception:  # lark raises many unrelated types for grammars it cannot load
        return None


def lark_accepts(parser, text: str) -> bool:
    import lark

    try:
        parser.parse(text)
        return True
    except lark.exceptions.LarkError:
        return False


def near_misses(parser, valid: list[str], n: int, seed: int, name: str) -> list[str]:
    """Up to n one-edit variants of valid examples that lark's parser rejects."""
    if parser is None or not valid or n <= 0:
        return []
    rng = random.Random(f"{seed}:{name}")
    out: list[str] = []
    for _ in range(100 * n):
        if len(out) >= n:
            break
        s = rng.choice(valid)
        if not s:
            continue
        i = rng.randrange(len(s))
        c = rng.choice('()[]{}",:;+*=#@!')
        t = rng.choice((s[:i] + c + s[i:], s[:i] + s[i + 1:], s[:i] + c + s[i + 1:]))
        if t not in out and t not in valid and not lark_accepts(parser, t):
            out.append(t)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--engines", help="comma-separated subset of " + ",".join(GRAMMAR_ENGINES))
    ap.add_argument("--grammars", help="comma-separated grammar names (default: all with examples)")
    ap.add_argument("--max-examples", type=int, default=0, help="at most this many examples per grammar (0: all)")
    ap.add_argument("--invalid", type=int, default=3, help="near misses per grammar, checked with lark")
    ap.add_argument("--no-gbnf", action="store_true", help="skip the .gbnf grammars")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--timeout", type=float, default=60.0, help="seconds per grammar and engine")
    ap.add_argument("--max-rss-mb", type=int, default=8000)
    ap.add_argument("--tokenizer", default="qwen2", choices=_harness.TOKENIZERS)
    ap.add_argument("--quiet", action="store_true")
    args = ap.parse_args(argv)

    _harness.single_thread_env()
    engines = [e for e in _harness.parse_engines(args.engines) if e in GRAMMAR_ENGINES]
    print(_harness.machine_info(engines))
    root = grammar_dir()
    if root is None:
        print("note: constrain/grammars/ is not there yet: nothing to benchmark")
        return 0
    wanted = {g.strip() for g in args.grammars.split(",")} if args.grammars else None

    tok = _harness.load_tokenizer(args.tokenizer)
    jobs, notes = [], []
    lark_invalid: dict[str, list[str]] = {}
    suffixes = [(".lark", "lark")] + ([] if args.no_gbnf else [(".gbnf", "gbnf")])
    for suffix, kind in suffixes:
        for path in sorted(root.glob(f"*{suffix}")):
            name = path.stem
            if wanted is not None and name not in wanted:
                continue
            valid = read_examples(root, name)
            if args.max_examples:
                valid = valid[: args.max_examples]
            if not valid:
                notes.append(f"{path.name}: no examples, skipped")
                continue
            text = path.read_text(encoding="utf-8")
            if kind == "lark":
                parser = lark_reference(text, root)
                if parser is None:
                    notes.append(f"{path.name}: lark cannot load it, so no near misses")
                else:
                    rejected = [v for v in valid if not lark_accepts(parser, v)]
                    if rejected:
                        notes.append(f"{path.name}: lark itself rejects {len(rejected)} example(s)")
                invalid = near_misses(parser, valid, args.invalid, args.seed, name)
                lark_invalid[name] = invalid
            else:
                invalid = lark_invalid.get(name, [])  # same language as <name>.lark
            label = name if kind == "lark" else path.name
            jobs.append({"id": label, "kind": kind, "spec": text,
                         "tests": [{"valid": True, "tokens": _harness.encode(tok, s)} for s in valid]
                         + [{"valid": False, "tokens": _harness.encode(tok, s)} for s in invalid]})
    if not jobs:
        print("note: no grammar with examples found")
        for n in notes:
            print(f"note: {n}")
        return 0
    n_tok = sum(len(t["tokens"]) for j in jobs for t in j["tests"])
    print(f"data    : {len(jobs)} grammars, {sum(len(j['tests']) for j in jobs)} inputs ({n_tok:,} tokens); "
          f"tokenizer {args.tokenizer} ({len(tok):,} ids); timeout {args.timeout:g} s")
    print()
    results, infos = _harness.run_engines(engines, jobs, tokenizer=args.tokenizer, warmup_kind="lark",
                                          timeout=args.timeout, max_rss_mb=args.max_rss_mb, quiet=args.quiet)
    _harness.report_items([j["id"] for j in jobs], engines, results, infos, "grammar")
    for n in notes:
        print(f"note: {n}")
    print("note: outlines_core has no grammar front end (regex and JSON Schema only)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
