"""A fingerprint of every mask constrain computes along real inputs.

Refactors of the compiler and the mask machinery must not change a single mask. This
script compiles a fixed sample of MaskBench schemas and the regex benchmark's patterns,
feeds each test input token by token (the mask before every token, and the one after the
last), and prints one SHA-256 over all of them, plus the counts. Run it before and after
a change: the digests must be equal.

    .venv/bin/python benchmarks/mask_hash.py                 # 200 schemas, whitespace="json"
    .venv/bin/python benchmarks/mask_hash.py --schemas 50 --whitespace bounded
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time

import numpy as np

import _harness
import bench_regex
import maskbench


def _feed(matcher, tokens: list[int], bitmask: np.ndarray, digest) -> int:
    """Hash the masks along ``tokens`` until one is refused, or none can follow (a
    ``uniqueItems`` item with no new completion, hashed as an empty mask); returns how
    many were hashed."""
    from constrain import MatcherError

    n = 0
    for tok in [*tokens, None]:
        bitmask.fill(0)
        try:
            matcher.fill_bitmask(bitmask, 0)
        except MatcherError:
            digest.update(bitmask.tobytes())
            return n + 1
        digest.update(bitmask.tobytes())
        n += 1
        if tok is None or not matcher.advance(tok):
            return n
    return n


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--schemas", type=int, default=200, help="MaskBench schemas (a fixed random sample)")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--whitespace", default="json", help="whitespace policy of the JSON Schemas")
    ap.add_argument("--tokenizer", default="qwen2")
    ap.add_argument("--data", default=str(maskbench.DEFAULT_DATA))
    ap.add_argument("--per-schema", help="also write each schema's own digest here (id, digest), to find which changed")
    args = ap.parse_args(argv)
    _harness.single_thread_env()

    import constrain

    whitespace: str | int = int(args.whitespace) if args.whitespace.isdigit() else args.whitespace
    tokenizer = _harness.load_tokenizer(args.tokenizer)
    vocab = constrain.Vocabulary.from_tokenizer(tokenizer)
    bitmask = constrain.allocate_bitmask(1, vocab.model_vocab_size)
    t0 = time.perf_counter()

    digest = hashlib.sha256()
    rows = maskbench.load_schemas(maskbench.Path(args.data), limit=None, sample=args.schemas, seed=args.seed,
                                  ids_file=None)
    compiled = masks = 0
    each = open(args.per_schema, "w") if args.per_schema else None
    for row in rows:
        own = hashlib.sha256()
        try:
            grammar = constrain.compile(constrain.JsonSchema(row["schema"], whitespace=whitespace), vocab, cache=False)
        except constrain.ConstrainError as e:
            digest.update(f"{row['id']}:{type(e).__name__}".encode())
            if each:
                each.write(f"{row['id']} {type(e).__name__}: {e}\n")
            continue
        compiled += 1
        for test in row.get("tests") or []:
            text = json.dumps(test["data"], indent=None, ensure_ascii=False)
            masks += _feed(grammar.matcher(), _harness.encode(tokenizer, text), bitmask, digest)
            _feed(grammar.matcher(), _harness.encode(tokenizer, text), bitmask, own)
        if each:
            each.write(f"{row['id']} {own.hexdigest()}\n")
    if each:
        each.close()
    schema_digest = digest.hexdigest()

    regex_digest = hashlib.sha256()
    regex_masks = 0
    for name, pattern in bench_regex.patterns().items():
        grammar = constrain.compile(constrain.Regex(pattern), vocab, cache=False)
        for text, _valid in bench_regex.make_samples(name, pattern, 5, 2, 0):
            regex_masks += _feed(grammar.matcher(), _harness.encode(tokenizer, text), bitmask, regex_digest)

    print(f"schemas: {compiled}/{len(rows)} compiled, {masks} masks, sha256 {schema_digest}")
    print(f"regexes: {regex_masks} masks, sha256 {regex_digest.hexdigest()}")
    print(f"({time.perf_counter() - t0:.1f} s)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
