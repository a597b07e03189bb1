"""Applying a token bitmask to logits: time per call for each backend of
``constrain.apply_bitmask`` beside XGrammar's ``apply_token_bitmask_inplace`` (where
installed), for batch 1/8/64 and vocabularies of 32k/151k/248k ids.

Every backend's result is first checked against a reference on the same inputs. On a
machine without a GPU the float32 CPU backends are timed (numba, torch, XGrammar's CPU
kernel) and the Triton kernel is only checked, under Triton's interpreter
(``TRITON_INTERPRET=1``, set by this script when no GPU is present): interpreter times
mean nothing. On a GPU, Triton and torch are timed with CUDA events.

    .venv/bin/python benchmarks/bench_kernels.py
    .venv/bin/python benchmarks/bench_kernels.py --batches 1,64 --vocabs 151646 --dtype bfloat16
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np

import _harness

RESULTS = Path(__file__).parent / "results" / "kernels.json"


def reference(logits, bitmask):
    import torch

    words = bitmask.cpu().numpy().view(np.uint32)
    bits = np.unpackbits(words.view(np.uint8), bitorder="little").reshape(words.shape[0], -1)
    vocab = logits.shape[1]
    allowed = np.zeros((words.shape[0], vocab), dtype=bool)
    n = min(vocab, bits.shape[1])
    allowed[:, :n] = bits[:, :n].astype(bool)
    out = logits.clone()
    out[torch.from_numpy(~allowed).to(logits.device)] = float("-inf")
    return out


def time_call(fn, device: str, repeats: int) -> list[float]:
    """Seconds per call, ``repeats`` times (CUDA events on a GPU)."""
    import torch

    out = []
    for _ in range(repeats):
        if device == "cuda":
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            fn()
            end.record()
            torch.cuda.synchronize()
            out.append(start.elapsed_time(end) / 1e3)
        else:
            t0 = time.perf_counter()
            fn()
            out.append(time.perf_counter() - t0)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--batches", default="1,8,64")
    ap.add_argument("--vocabs", default="32000,151646,248320")
    ap.add_argument("--dtype", default="float32", choices=["float32", "bfloat16", "float16"])
    ap.add_argument("--repeats", type=int, default=50)
    ap.add_argument("--out", type=Path, default=RESULTS)
    args = ap.parse_args(argv)

    import torch

    gpu = torch.cuda.is_available()
    if not gpu:
        os.environ.setdefault("TRITON_INTERPRET", "1")
    device = "cuda" if gpu else "cpu"
    dtype = getattr(torch, args.dtype)
    import constrain

    try:
        import xgrammar

        xgr_apply = xgrammar.apply_token_bitmask_inplace
    except ImportError:
        xgr_apply = None

    backends = ["triton", "torch"] if gpu else ["numba", "torch", "triton"]
    rows = []
    for vocab in (int(v) for v in args.vocabs.split(",")):
        for batch in (int(b) for b in args.batches.split(",")):
            g = torch.Generator().manual_seed(vocab + batch)
            base = torch.randn(batch, vocab, generator=g).to(dtype).to(device)
            words = (vocab + 31) // 32
            bitmask = torch.randint(-2**31, 2**31 - 1, (batch, words), dtype=torch.int32, generator=g).to(device)
            want = reference(base, bitmask)
            row = {"vocab": vocab, "batch": batch, "dtype": args.dtype, "device": device}
            peers = [(b, lambda x, b=b: constrain.apply_bitmask(x, bitmask, backend=b)) for b in backends]
            if xgr_apply is not None:
                peers.append(("xgrammar", lambda x: xgr_apply(x, bitmask)))
            for name, fn in peers:
                if name == "numba" and dtype != torch.float32:
                    continue
                x = base.clone()
                try:
                    fn(x)
                except Exception as e:  # a peer's kernel may not support this device or dtype
                    row[name] = f"error: {type(e).__name__}"
                    continue
                if not torch.equal(x, want):
                    row[name] = "WRONG"
                    continue
                if name == "triton" and not gpu:
                    row[name] = "ok (interpreted)"
                    continue
                x = base.clone()
                ts = sorted(time_call(lambda: fn(x), device, args.repeats))
                row[name] = ts[len(ts) // 2] * 1e6  # median µs
            rows.append(row)
            print(".", end="", flush=True)
    print()
    names = backends + (["xgrammar"] if xgr_apply is not None else [])
    table = [[r["vocab"], r["batch"]] + [f"{r[n]:.1f}" if isinstance(r.get(n), float) else r.get(n, "-") for n in names]
             for r in rows]
    print(_harness.format_table(["vocab", "batch"] + [f"{n} (µs)" for n in names], table,
                                f"apply_bitmask, {args.dtype} logits on {device}, median of {args.repeats}"))
    print(_harness.machine_info(["xgrammar"] if xgr_apply else []))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"rows": rows, "machine": _harness.machine_info([])}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
