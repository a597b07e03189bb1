"""End-to-end generation throughput: constrained vs unconstrained ``model.generate``.

Usage (from the repository root):

    .venv/bin/python benchmarks/bench_generate.py
    .venv/bin/python benchmarks/bench_generate.py --batch 1,8 --new-tokens 48 --runs 3 --threads 2
    .venv/bin/python benchmarks/bench_generate.py --engines unconstrained,constrain

The bundled SmolLM2-135M-Instruct (CPU, float32) generates greedily through plain
``transformers`` ``model.generate`` with each engine's logits processor: constrain's
``constrain.integrations.transformers.LogitsProcessor``, XGrammar's
``xgrammar.contrib.hf.LogitsProcessor``, and for llguidance (which ships no
``transformers`` processor) a thin one built from ``LLMatcher`` and the
``llguidance.torch`` mask helpers. The schema is an object with one free string, so a
constrained run can go on for the whole budget; ``min_new_tokens = max_new_tokens`` makes
every run take the same number of decode steps. The generated token count is checked and
throughput is computed from the tokens actually generated.

Each engine gets one warm-up generation (numba JIT / cache load, torch.compile), then
``--runs`` timed runs, interleaved across engines so that background load on a shared
machine hits them alike; the median is reported. The processor's own ``__call__`` (advance
by the new token, fill the mask, apply it) is timed separately per decode step.

This module also holds the pieces ``bench_budget.py`` reuses: model loading, prompts,
and one processor factory for every engine.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any, Sequence

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _harness  # noqa: E402

GEN_ENGINES = ("unconstrained", "constrain", "xgrammar", "llguidance")
PEER_ENV = {"RAYON_NUM_THREADS": "1", "NUMBA_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false"}


# --------------------------------------------------------------------------- setup


def setup_threads(threads: int) -> str:
    """Torch gets ``threads`` intra-op threads; the engines one each. Returns a report line."""
    os.environ.update(PEER_ENV)
    import torch

    torch.set_num_threads(threads)
    torch.set_num_interop_threads(1)
    return (f"threads : torch {torch.get_num_threads()} intra-op / 1 inter-op; engines single-threaded "
            f"({', '.join(f'{k}={v}' for k, v in PEER_ENV.items())})")


def print_machine(threads_line: str) -> None:
    info = _harness.machine_info(("constrain", "xgrammar", "llguidance"))
    lines = [ln for ln in info.splitlines() if not ln.startswith("threads")]
    print("\n".join(lines + [threads_line]))
    print("model   : SmolLM2-135M-Instruct (bundled GGUF, de-quantized), CPU float32, greedy")
    print()


def parse_engines(text: str | None) -> list[str]:
    if not text:
        return list(GEN_ENGINES)
    names = [t.strip() for t in text.split(",") if t.strip()]
    bad = [n for n in names if n not in GEN_ENGINES]
    if bad:
        raise SystemExit(f"unknown engine(s) {bad}; choose from {', '.join(GEN_ENGINES)}")
    return names


def load_model():
    """(tokenizer, model) of the bundled SmolLM2, tokenizer set up for left padding."""
    from constrain import assets

    tok = assets.smollm2_tokenizer()
    tok.padding_side = "left"
    if tok.pad_token_id is None:
        tok.pad_token = tok.eos_token
    model = assets.smollm2_model()
    return tok, model


def chat_batch(tok, user_messages: Sequence[str]):
    """Left-padded input ids and attention mask for chats of one user message each."""
    texts = [tok.apply_chat_template([{"role": "user", "content": m}], tokenize=False, add_generation_prompt=True)
             for m in user_messages]
    return tok(texts, return_tensors="pt", padding=True, add_special_tokens=False)


# --------------------------------------------------------------------------- processors


class LLGuidanceProcessor:
    """A ``transformers`` logits processor over llguidance's public matcher API.

    One ``LLMatcher`` per row; each call consumes the rows' new tokens, fills the bitmask
    with ``llguidance.numpy.fill_next_token_bitmask`` and applies it with
    ``llguidance.numpy.apply_token_bitmask_inplace`` on the logits' numpy view (CPU only).
    ``apply="torch"`` uses ``llguidance.torch.apply_token_bitmask_inplace`` instead, a
    ``torch.compile`` kernel: on this CPU its first call compiles for tens of seconds and
    later calls still cost ~20 ms. One processor per ``generate`` call.
    """

    def __init__(self, lltok, grammar: str, vocab_size: int, apply: str = "numpy"):
        self.apply = apply
        self.lltok = lltok
        self.grammar = grammar
        self.vocab_size = vocab_size
        self.matchers: list | None = None
        self.seen = 0

    def __call__(self, input_ids, scores):
        import llguidance
        import llguidance.numpy as lln
        import llguidance.torch as llt

        batch, seq_len = input_ids.shape
        if self.matchers is None:
            self.matchers = [llguidance.LLMatcher(self.lltok, self.grammar) for _ in range(batch)]
            for m in self.matchers:
                if m.is_error():
                    raise RuntimeError(f"llguidance: {m.get_error()}")
            self.bitmask = lln.allocate_token_bitmask(batch, self.vocab_size)
            self.seen = seq_len
        if seq_len > self.seen:
            new = input_ids[:, self.seen:seq_len].tolist()
            for row, m in enumerate(self.matchers):
                for t in new[row]:
                    if m.is_stopped():
                        break
                    if not m.consume_token(t):
                        raise RuntimeError(f"llguidance row {row}: token {t} refused: {m.get_error()}")
            self.seen = seq_len
        for row, m in enumerate(self.matchers):
            if m.is_stopped():
                self.bitmask[row] = -1
            else:
                lln.fill_next_token_bitmask(m, self.bitmask, row)
        if self.apply == "torch":
            import torch

            llt.apply_token_bitmask_inplace(scores, torch.from_numpy(self.bitmask))
        else:
            lln.apply_token_bitmask_inplace(scores.numpy(), self.bitmask)
        return scores


class TimedProcessor:
    """Wraps a logits processor and records the wall time of each of its calls (ns)."""

    def __init__(self, inner):
        self.inner = inner
        self.calls_ns: list[int] = []

    def __call__(self, input_ids, scores):
        t0 = time.perf_counter_ns()
        out = self.inner(input_ids, scores)
        self.calls_ns.append(time.perf_counter_ns() - t0)
        return out


class Engines:
    """Per-engine vocabularies, compiled grammars and fresh processors for one tokenizer.

    ``whitespace``: ``"default"`` (each engine's default: constrain's bounded policy,
    XGrammar's and llguidance's any whitespace), ``"json"`` (JSON's own everywhere:
    constrain ``whitespace="json"``) or ``"compact"`` (constrain ``whitespace="compact"``,
    XGrammar ``any_whitespace=False``, llguidance ``whitespace_flexible=False``).
    """

    def __init__(self, tok, model, whitespace: str = "default", llg_apply: str = "numpy"):
        self.llg_apply = llg_apply
        self.tok = tok
        self.model = model
        self.whitespace = whitespace
        self.vocab_size = model.config.vocab_size
        self.prep_s: dict[str, float] = {}
        self._state: dict[str, Any] = {}

    def _prepare(self, engine: str) -> Any:
        if engine in self._state:
            return self._state[engine]
        t0 = time.perf_counter()
        if engine == "constrain":
            import constrain

            st = constrain.Vocabulary.from_tokenizer(self.tok, model_vocab_size=self.vocab_size,
                                                     generation_config=self.model.generation_config)
        elif engine == "xgrammar":
            import xgrammar as xgr

            info = xgr.TokenizerInfo.from_huggingface(self.tok, vocab_size=self.vocab_size)
            st = xgr.GrammarCompiler(info, max_threads=1, cache_enabled=False)
        elif engine == "llguidance":
            import llguidance.hf

            st = llguidance.hf.from_tokenizer(self.tok, n_vocab=self.vocab_size)
        else:
            st = None
        self.prep_s[engine] = time.perf_counter() - t0
        self._state[engine] = st
        return st

    def compile(self, engine: str, schema: Any) -> Any:
        """The engine's compiled form of ``schema`` (a pydantic model class or a JSON Schema dict)."""
        st = self._prepare(engine)
        if engine == "constrain":
            import constrain

            if self.whitespace == "default":
                return constrain.compile(schema, st)
            if isinstance(schema, dict):
                return constrain.compile(constrain.JsonSchema(schema, whitespace=self.whitespace), st)
            from constrain.frontends.pydantic import pydantic_to_schema

            return constrain.compile(constrain.JsonSchema(pydantic_to_schema(schema), whitespace=self.whitespace), st)
        if engine == "xgrammar":
            as_dict = schema if isinstance(schema, dict) else schema.model_json_schema()
            return st.compile_json_schema(json.dumps(as_dict), any_whitespace=self.whitespace != "compact")
        if engine == "llguidance":
            import llguidance

            as_dict = schema if isinstance(schema, dict) else schema.model_json_schema()
            grammar = llguidance.LLMatcher.grammar_from_json_schema(
                as_dict, defaults={"whitespace_flexible": self.whitespace != "compact"})
            is_error, msgs = llguidance.LLMatcher.validate_grammar_with_warnings(grammar, st)
            if is_error:
                raise RuntimeError(f"llguidance: {msgs}")
            return grammar
        return None

    def processor(self, engine: str, compiled: Any, max_new_tokens: int):
        """A fresh logits processor for one ``generate`` call, or None (unconstrained)."""
        if engine == "constrain":
            from constrain.integrations.transformers import LogitsProcessor

            return LogitsProcessor(compiled, max_new_tokens=max_new_tokens)
        if engine == "xgrammar":
            import xgrammar.contrib.hf

            return xgrammar.contrib.hf.LogitsProcessor(compiled)
        if engine == "llguidance":
            return LLGuidanceProcessor(self._prepare("llguidance"), compiled, self.vocab_size, self.llg_apply)
        return None


def run_generate(model, tok, enc, processor, max_new_tokens: int, min_new_tokens: int | None = None):
    """Greedy ``model.generate``; returns (generated ids [batch, n], wall seconds)."""
    import torch
    from transformers import LogitsProcessorList

    kwargs: dict[str, Any] = dict(max_new_tokens=max_new_tokens, do_sample=False,
                                  eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id)
    if min_new_tokens:
        kwargs["min_new_tokens"] = min_new_tokens
    if processor is not None:
        kwargs["logits_processor"] = LogitsProcessorList([processor])
    with torch.inference_mode():
        t0 = time.perf_counter()
        out = model.generate(**enc, **kwargs)
        wall = time.perf_counter() - t0
    return out[:, enc["input_ids"].shape[1]:], wall


def content_ids(row: Sequence[int], eos: int) -> tuple[list[int], bool]:
    """Generated ids before the first EOS, and whether an EOS was produced."""
    row = list(row)
    if eos in row:
        return row[: row.index(eos)], True
    return row, False


# --------------------------------------------------------------------------- throughput benchmark

STORY_SCHEMA = {
    "type": "object",
    "properties": {"title": {"type": "string", "maxLength": 60}, "story": {"type": "string"}},
    "required": ["title", "story"],
    "additionalProperties": False,
}

STORY_TOPICS = ["a lighthouse keeper", "a lost robot", "a baker in Paris", "a dragon who fears fire",
                "two rival chess players", "a time-travelling cat", "a deep-sea diver", "a village in winter",
                "an astronaut's first day", "a haunted library", "a desert caravan", "a clockmaker's apprentice",
                "a forgotten island", "a jazz musician", "a mountain rescue", "a garden that talks"]


def story_prompts(n: int) -> list[str]:
    return [f"Write a long story about {STORY_TOPICS[i % len(STORY_TOPICS)]}. Reply in JSON with the keys "
            f"\"title\" and \"story\"." for i in range(n)]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--engines", help=f"comma-separated subset of {','.join(GEN_ENGINES)} (default: all)")
    ap.add_argument("--batch", default="1,8", help="comma-separated batch sizes")
    ap.add_argument("--new-tokens", type=int, default=48, help="min_new_tokens = max_new_tokens")
    ap.add_argument("--runs", type=int, default=3, help="timed runs per engine and batch (median reported)")
    ap.add_argument("--threads", type=int, default=2, help="torch intra-op threads")
    # JSON's own whitespace by default here: with min_new_tokens forcing every row to the
    # same length, a finished document must be able to go on (with whitespace) until then.
    ap.add_argument("--whitespace", default="json", choices=("default", "json", "compact"))
    ap.add_argument("--llg-apply", default="numpy", choices=("numpy", "torch"),
                    help="llguidance mask application: llguidance.numpy or llguidance.torch (torch.compile)")
    args = ap.parse_args()

    threads_line = setup_threads(args.threads)
    engines = parse_engines(args.engines)
    batches = [int(b) for b in args.batch.split(",") if b.strip()]
    n = args.new_tokens
    print_machine(threads_line)

    tok, model = load_model()
    eng = Engines(tok, model, whitespace=args.whitespace, llg_apply=args.llg_apply)
    compiled: dict[str, Any] = {}
    errors: dict[str, str] = {}
    for e in engines:
        try:
            compiled[e] = eng.compile(e, STORY_SCHEMA)
        except Exception as exc:  # a peer that cannot compile is reported, not fatal
            errors[e] = f"{type(exc).__name__}: {exc}"
    print(f"schema  : {json.dumps(STORY_SCHEMA)}")
    print(f"decode  : min_new_tokens = max_new_tokens = {n}, whitespace={args.whitespace}, "
          f"{args.runs} timed runs after 1 warm-up, median")
    print()

    rows = []
    notes: list[str] = []
    for b in batches:
        enc = chat_batch(tok, story_prompts(b))
        live = [e for e in engines if e not in errors]
        res: dict[str, dict] = {e: {"wall": [], "calls": [], "tokens": [], "complete": 0, "rows": 0} for e in live}
        for rep in range(args.runs + 1):
            for e in list(live):
                proc = eng.processor(e, compiled.get(e), n)
                timed = TimedProcessor(proc) if proc is not None else None
                try:
                    gen, wall = run_generate(model, tok, enc, timed, n, min_new_tokens=n)
                except Exception as exc:
                    errors[e] = f"batch {b}: {type(exc).__name__}: {str(exc)[:200]}"
                    live.remove(e)
                    continue
                if rep == 0:
                    # Warm-up: show one output and count complete documents.
                    texts = [tok.decode(content_ids(r, tok.eos_token_id)[0]) for r in gen.tolist()]
                    complete = 0
                    for t in texts:
                        try:
                            json.loads(t)
                            complete += 1
                        except ValueError:
                            pass
                    res[e]["complete"], res[e]["rows"] = complete, len(texts)
                    notes.append(f"batch {b}, {e}, row 0: {texts[0][:150]!r}")
                    continue
                toks = sum(len(content_ids(r, -1)[0]) for r in gen.tolist())
                res[e]["wall"].append(wall)
                res[e]["tokens"].append(toks)
                if timed is not None:
                    res[e]["calls"].extend(timed.calls_ns)
        base = None
        for e in engines:
            if e in errors and (e not in res or not res[e]["wall"]):
                rows.append([f"{e}", b, "error", "", "", "", "", "", "", ""])
                continue
            r = res[e]
            wall = statistics.median(r["wall"])
            toks = statistics.median(r["tokens"])
            tps = toks / wall
            per_tok_ms = wall / (toks / b) * 1000  # per decode step
            if e == "unconstrained":
                base = tps
            calls = sorted(r["calls"])
            share = (sum(calls) / len(r["wall"])) / 1e9 / wall if calls else 0.0
            rows.append([
                e, b, f"{toks / b:.0f}", f"{tps:.1f}", f"{per_tok_ms:.1f}",
                f"{tps / base:.3f}" if base and e != "unconstrained" else ("1.000" if e == "unconstrained" else "-"),
                _harness.fmt_us(_harness.percentile(calls, 50)) if calls else "-",
                _harness.fmt_us(_harness.percentile(calls, 99)) if calls else "-",
                f"{100 * share:.1f}%" if calls else "-",
                f"{r['complete']}/{r['rows']}" if e != "unconstrained" else "-",
            ])
    print(_harness.format_table(
        ["engine", "batch", "new tokens / row", "tokens/s", "ms / step", "tokens/s ratio vs unconstrained",
         "processor call p50 µs", "p99 µs", "processor share of wall", "complete JSON rows"], rows,
        title=f"model.generate, {n} new tokens per row, prompt padded to the longest in the batch"))
    print()
    print("tokens/s = generated tokens (all rows) / wall time of generate (prefill included), median of runs;")
    print("ratio = engine tokens/s / unconstrained tokens/s; processor call = the logits processor's __call__")
    print("(advance + fill mask + apply), one per decode step for the whole batch; complete JSON rows from the")
    print("warm-up run (json.loads of the text before EOS).")
    print()
    print("vocabulary preprocessing s: " + ", ".join(f"{k} {v:.2f}" for k, v in eng.prep_s.items() if k != "unconstrained"))
    for e, msg in errors.items():
        print(f"error: {e}: {msg}")
    for line in notes:
        print("sample: " + line)


if __name__ == "__main__":
    main()
