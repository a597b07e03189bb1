"""One adapter per engine, and a worker process that runs benchmark jobs through it.

Every engine runs in its own spawned process, pinned to one thread, handling jobs one
at a time; the parent kills and restarts a worker that overruns a job's time limit or
memory limit, so that one pathological schema costs one timeout and nothing else.

A job is a dict ``{"id", "kind": "json" | "regex" | "lark" | "gbnf", "spec",
"tests": [{"valid", "tokens"}]}``; the worker compiles ``spec``, fills the first mask (TTFM), then walks each
test's tokens: fill the mask (timed), check the token is allowed, advance. A compile error
comes back with ``declined``: true when the engine refused the spec with its own error
(for constrain, a ``ConstrainError``), false when something else broke. Each adapter
uses its engine's documented public API and nothing private.
"""

from __future__ import annotations

import atexit
import gc
import json
import multiprocessing as mp
import os
import statistics
import time
import traceback
from typing import Any, Callable

import _harness

_ns = time.perf_counter_ns


class Unavailable(Exception):
    """The engine cannot run this kind of job at all (not a compile error of one spec)."""


class CompileFailure(Exception):
    """The engine reported, without raising, that a spec did not compile."""


# --------------------------------------------------------------------------- adapters


class Adapter:
    """Uniform face of one engine: ``compile``, ``matcher``, ``bind``."""

    name = ""
    kinds: frozenset[str] = frozenset()

    def __init__(self, tokenizer: Any) -> None:
        self.vocab_size = len(tokenizer)
        self.eos_ids: list[int] = []

    def check_kind(self, kind: str) -> None:
        if kind not in self.kinds:
            raise Unavailable(f"{self.name} has no {kind} front end")

    def compile(self, kind: str, spec: Any) -> Any:
        raise NotImplementedError

    def matcher(self, compiled: Any) -> Any:
        raise NotImplementedError

    def bind(self, m: Any, bitmask: Any) -> tuple[Callable[[], Any], Callable[[int], Any], Callable[[], bool]]:
        """(fill the bitmask row 0, advance by a token -> truthy if accepted, is accepting)."""
        raise NotImplementedError

    def error(self, m: Any) -> str | None:
        """An error the engine reports through state rather than an exception."""
        return None

    def declines(self, exc: Exception) -> bool:
        """Whether an exception raised while compiling is the engine's own refusal of the
        spec (unsupported, malformed, unsatisfiable) rather than a failure of the engine."""
        return True

    def reset(self) -> None:
        """Forget whatever the engine cached in process, so the next compile is a real one."""

    def allocate(self):
        import numpy as np

        return np.zeros((1, (self.vocab_size + 31) // 32), dtype=np.int32)


class ConstrainAdapter(Adapter):
    name = "constrain"

    def __init__(self, tokenizer: Any) -> None:
        super().__init__(tokenizer)
        import constrain

        self._c = constrain
        self.vocab = constrain.Vocabulary.from_tokenizer(tokenizer)
        self.vocab_size = self.vocab.model_vocab_size
        self.eos_ids = list(self.vocab.eos_token_ids)
        if hasattr(constrain, "warmup"):
            constrain.warmup(self.vocab)  # every kernel loaded before anything is timed
        missing = [n for n in ("compile", "allocate_bitmask") if not hasattr(constrain, n)]
        self.unavailable_reason = (
            f"constrain.{missing[0]} not available" if missing else None
        )
        self._compile_kwargs = {}
        # Options of constrain.JsonSchema for this run (maskbench.py --constrain-json-options).
        self._json_options = json.loads(os.environ.get("CONSTRAIN_BENCH_JSON_OPTIONS") or "{}")
        if not missing:
            import inspect

            if "cache" in inspect.signature(constrain.compile).parameters:
                self._compile_kwargs["cache"] = False
        self.kinds = frozenset(
            k for k, cls in (("json", "JsonSchema"), ("regex", "Regex"), ("lark", "Lark"), ("gbnf", "GBNF"))
            if hasattr(constrain, cls)
        )

    def check_kind(self, kind: str) -> None:
        if self.unavailable_reason:
            raise Unavailable(self.unavailable_reason)
        if kind not in self.kinds:
            raise Unavailable(f"constrain has no {kind} front end")

    def compile(self, kind: str, spec: Any) -> Any:
        c = self._c
        if kind == "json":
            return c.compile(c.JsonSchema(spec, **self._json_options), self.vocab, **self._compile_kwargs)
        wrapped = {"regex": c.Regex, "lark": c.Lark, "gbnf": c.GBNF}[kind](spec)
        # The in-memory grammar cache is off: every compile in these benchmarks is a real one.
        return c.compile(wrapped, self.vocab, **self._compile_kwargs)

    def matcher(self, compiled: Any) -> Any:
        return compiled.matcher()

    def allocate(self):
        if hasattr(self._c, "allocate_bitmask"):
            return self._c.allocate_bitmask(1, self.vocab_size)
        return super().allocate()

    def reset(self) -> None:
        if hasattr(self._c, "clear_caches"):
            self._c.clear_caches()

    def declines(self, exc: Exception) -> bool:
        return isinstance(exc, self._c.ConstrainError)

    def bind(self, m, bitmask):
        fill_bitmask = m.fill_bitmask
        return (lambda: fill_bitmask(bitmask, 0)), m.advance, m.is_accepting


class LLGuidanceAdapter(Adapter):
    name = "llguidance"
    kinds = frozenset({"json", "regex", "lark", "gbnf"})

    def __init__(self, tokenizer: Any) -> None:
        super().__init__(tokenizer)
        import llguidance
        import llguidance.hf

        self._llg = llguidance
        self.tok = llguidance.hf.from_tokenizer(tokenizer, n_vocab=self.vocab_size)
        self.eos_ids = [int(tokenizer.eos_token_id)]

    def compile(self, kind: str, spec: Any) -> Any:
        M = self._llg.LLMatcher
        if kind == "json":
            grammar = M.grammar_from_json_schema(spec)
        elif kind == "regex":
            grammar = M.grammar_from_regex(spec)
        elif kind == "gbnf":
            from llguidance.gbnf_to_lark import gbnf_to_lark

            grammar = M.grammar_from_lark(gbnf_to_lark(spec))
        else:
            grammar = M.grammar_from_lark(spec)
        # The constructor compiles the grammar; errors are reported through is_error().
        m = M(self.tok, grammar, log_level=0)
        if m.is_error():
            raise CompileFailure(m.get_error())
        return m

    def matcher(self, compiled: Any) -> Any:
        return compiled.deep_copy()

    def bind(self, m, bitmask):
        ptr, nbytes = bitmask.ctypes.data, bitmask[0].nbytes
        compute = m.unsafe_compute_mask_ptr
        return (lambda: compute(ptr, nbytes)), m.consume_token, m.is_accepting

    def error(self, m) -> str | None:
        return m.get_error() if m.is_error() else None


class XGrammarAdapter(Adapter):
    name = "xgrammar"
    kinds = frozenset({"json", "regex", "lark", "gbnf"})

    def __init__(self, tokenizer: Any) -> None:
        super().__init__(tokenizer)
        import xgrammar as xgr

        self._xgr = xgr
        info = xgr.TokenizerInfo.from_huggingface(tokenizer, vocab_size=self.vocab_size)
        # Cache off: every compile in these benchmarks must be a real one.
        self.compiler = xgr.GrammarCompiler(info, max_threads=1, cache_enabled=False)
        self.eos_ids = list(info.stop_token_ids)

    def compile(self, kind: str, spec: Any) -> Any:
        if kind == "json":
            return self.compiler.compile_json_schema(spec if isinstance(spec, str) else _json_dumps(spec))
        if kind == "regex":
            return self.compiler.compile_regex(spec)
        if kind == "gbnf":
            return self.compiler.compile_grammar(spec)
        return self.compiler.compile_lark(spec)

    def matcher(self, compiled: Any) -> Any:
        return self._xgr.GrammarMatcher(compiled)

    def bind(self, m, bitmask):
        fill = m.fill_next_token_bitmask
        return (lambda: fill(bitmask, 0)), m.accept_token, m.is_completed


class OutlinesCoreAdapter(Adapter):
    name = "outlines_core"
    kinds = frozenset({"json", "regex"})

    def __init__(self, tokenizer: Any) -> None:
        super().__init__(tokenizer)
        import outlines_core

        self._oc = outlines_core
        eos = int(tokenizer.eos_token_id)
        self.eos_ids = [eos]
        # outlines-core keys its vocabulary on each token's exact bytes; special and
        # added control tokens are left out (they are never grammar text), as is EOS.
        skip = {int(i) for i, t in getattr(tokenizer, "added_tokens_decoder", {}).items() if t.special}
        skip.update(int(i) for i in getattr(tokenizer, "all_special_ids", []) if i is not None)
        skip.add(eos)
        by_bytes: dict[bytes, list[int]] = {}
        for i, b in enumerate(token_bytes(tokenizer)):
            if i in skip or b is None or b == b"":
                continue
            by_bytes.setdefault(b, []).append(i)
        self.vocab = outlines_core.Vocabulary(eos, by_bytes)

    def compile(self, kind: str, spec: Any) -> Any:
        if kind == "json":
            from outlines_core.json_schema import build_regex_from_schema

            spec = build_regex_from_schema(spec if isinstance(spec, str) else _json_dumps(spec))
        return self._oc.Index(spec, self.vocab)

    def matcher(self, compiled: Any) -> Any:
        return self._oc.Guide(compiled)

    def bind(self, m, bitmask):
        ptr, numel = bitmask.ctypes.data, bitmask.shape[1]
        write = m.write_mask_into
        advance = m.advance

        def adv(t: int) -> bool:
            advance(t, return_tokens=False)
            return True

        return (lambda: write(ptr, numel, 4)), adv, m.is_finished


ADAPTERS = {
    "constrain": ConstrainAdapter,
    "llguidance": LLGuidanceAdapter,
    "xgrammar": XGrammarAdapter,
    "outlines_core": OutlinesCoreAdapter,
}


def _json_dumps(obj: Any) -> str:
    import json

    return json.dumps(obj, ensure_ascii=False)


def token_bytes(tokenizer: Any) -> list[bytes | None]:
    """Exact bytes of every token of a Hugging Face tokenizer, done independently of
    constrain (byte-level BPE pieces, SentencePiece pieces with <0xNN> byte tokens)."""
    from transformers.convert_slow_tokenizer import bytes_to_unicode

    n = len(tokenizer)
    pieces = tokenizer.convert_ids_to_tokens(list(range(n)))
    added = {int(i): t.content for i, t in getattr(tokenizer, "added_tokens_decoder", {}).items()}
    unicode_to_byte = {u: b for b, u in bytes_to_unicode().items()}
    sample = [p for p in pieces[:5000] if p]
    byte_level = sum(all(ch in unicode_to_byte for ch in p) for p in sample) > 0.95 * len(sample)
    out: list[bytes | None] = []
    for i, p in enumerate(pieces):
        if i in added:
            out.append(added[i].encode("utf-8"))
        elif p is None:
            out.append(None)
        elif byte_level:
            out.append(bytes(unicode_to_byte[ch] for ch in p))
        elif len(p) == 6 and p.startswith("<0x") and p.endswith(">"):
            out.append(bytes([int(p[3:5], 16)]))
        else:
            out.append(p.replace("\u2581", " ").encode("utf-8"))
    return out


# --------------------------------------------------------------------------- worker


def _is_allowed(row, t: int) -> bool:
    return (int(row[t >> 5]) >> (t & 31)) & 1 == 1


class GcWatch:
    """The cyclic garbage collector's pauses in a worker (its callbacks): per job, the
    full collections and the longest; the collections that ran inside a timed mask (a
    mask that allocates may set one off) and the longest of those."""

    def __init__(self) -> None:
        self.in_mask = False
        self._t0 = 0
        self._reset()

    def _reset(self) -> None:
        self.full = self.masks = 0
        self.full_max_ns = self.mask_max_ns = 0

    def __call__(self, phase: str, info: dict) -> None:
        if phase == "start":
            self._t0 = time.perf_counter_ns()
            return
        took = time.perf_counter_ns() - self._t0
        if info["generation"] == 2:
            self.full += 1
            self.full_max_ns = max(self.full_max_ns, took)
        if self.in_mask:
            self.masks += 1
            self.mask_max_ns = max(self.mask_max_ns, took)

    def take(self) -> dict:
        out = {"full": self.full, "full_max_ns": self.full_max_ns, "in_masks": self.masks,
               "in_masks_max_ns": self.mask_max_ns}
        self._reset()
        return out


GC_WATCH = GcWatch()


def run_job(adapter: Adapter, job: dict, bitmask) -> dict:
    """Compile, time the first mask, walk every test; never raises for engine errors."""
    res: dict[str, Any] = {"id": job["id"], "engine": adapter.name, "status": "ok", "error": None}
    try:
        adapter.check_kind(job["kind"])
    except Unavailable as e:
        res.update(status="unavailable", error=str(e))
        return res
    row = bitmask[0]
    watch = GC_WATCH
    watch.take()
    # TTFM: the median over ``ttfm_repeat`` compiles (default one), each from scratch;
    # with ``ttfm_budget_s``, no new compile starts past that many seconds once three are done.
    compile_ns: list[int] = []
    ttfm_ns: list[int] = []
    budget = job.get("ttfm_budget_s")
    started = _ns()
    try:
        for k in range(max(1, int(job.get("ttfm_repeat", 1)))):
            if k >= 3 and budget is not None and _ns() - started > budget * 1e9:
                break
            if k:
                adapter.reset()
            t0 = _ns()
            compiled = adapter.compile(job["kind"], job["spec"])
            t1 = _ns()
            m = adapter.matcher(compiled)
            fill, _, _ = adapter.bind(m, bitmask)
            fill()
            t2 = _ns()
            err = adapter.error(m)
            if err:
                raise CompileFailure(err)
            compile_ns.append(t1 - t0)
            ttfm_ns.append(t2 - t0)
    except Exception as e:  # any exception while compiling is, by definition, a compile error
        res.update(status="compile_error", error=f"{type(e).__name__}: {e}"[:500],
                   declined=adapter.declines(e), gc=watch.take())
        return res
    res["compile_ns"] = statistics.median(compile_ns)
    res["ttfm_ns"] = statistics.median(ttfm_ns)
    res["ttfm_first_ns"] = ttfm_ns[0]
    tbm: list[int] = []
    adv_ns: list[int] = []
    tests_out = []
    validation_errors = invalidation_errors = disagreements = 0
    try:
        for test in job["tests"]:
            tokens = test["tokens"]
            m = adapter.matcher(compiled)
            fill, advance, accepting = adapter.bind(m, bitmask)
            rejected_at = None
            for i, t in enumerate(tokens):
                row.fill(0)  # a fill that skips words must show up as rejections
                watch.in_mask = True
                a = _ns()
                fill()
                b = _ns()
                watch.in_mask = False
                tbm.append(b - a)
                if not _is_allowed(row, t):
                    rejected_at = i
                    break
                c = _ns()
                ok = advance(t)
                adv_ns.append(_ns() - c)
                if not ok:
                    rejected_at = i
                    disagreements += 1  # the mask allowed a token that advance refused
                    break
            accept = False
            if rejected_at is None:
                row.fill(0)
                fill()
                eos_ok = any(_is_allowed(row, e) for e in adapter.eos_ids)
                own = bool(accepting())
                if own != eos_ok:
                    disagreements += 1
                accept = eos_ok if adapter.eos_ids else own
            right = accept == bool(test["valid"])
            if not right:
                if test["valid"]:
                    validation_errors += 1
                else:
                    invalidation_errors += 1
            tests_out.append({"valid": bool(test["valid"]), "right": right, "rejected_at": rejected_at,
                              "n_tokens": len(tokens)})
    except Exception as e:
        res.update(status="runtime_error", error=f"{type(e).__name__}: {e}"[:500])
    res.update(
        tbm_ns=tbm,
        advance_ns=adv_ns,
        tests=tests_out,
        validation_errors=validation_errors,
        invalidation_errors=invalidation_errors,
        disagreements=disagreements,
    )
    res["passed"] = res["status"] == "ok" and validation_errors == 0 and invalidation_errors == 0
    res["gc"] = watch.take()
    return res


WARMUP_JOBS = {
    "regex": {"id": "warmup-regex", "kind": "regex", "spec": r"[a-z]{1,12}@[a-z]{1,12}\.(com|org)",
              "text": "alice@example.org"},
    "json": {"id": "warmup-json", "kind": "json",
             "spec": {"type": "object", "properties": {"name": {"type": "string"},
                      "n": {"type": "integer"}, "tags": {"type": "array", "items": {"type": "string"}}},
                      "required": ["name"]},
             "text": '{"name": "x y", "n": 12, "tags": ["a"]}'},
    "lark": {"id": "warmup-lark", "kind": "lark",
             "spec": 'start: "(" expr ")"\nexpr: NUMBER ("+" NUMBER)*\nNUMBER: /[0-9]+/\n',
             "text": "(1+22+333)"},
    "gbnf": {"id": "warmup-gbnf", "kind": "gbnf",
             "spec": 'root ::= "(" expr ")"\nexpr ::= num ("+" num)*\nnum ::= [0-9]+\n',
             "text": "(1+22+333)"},
}


def worker_main(conn, engine: str, tokenizer_name: str, warmup_kinds: list[str], gc_freeze: bool = False) -> None:
    """Entry point of a spawned engine worker: build, warm up, then serve jobs. With
    ``gc_freeze``, the heap left by the setup (tokenizer, imports) is moved out of the cyclic
    collector's reach, as a server does after loading, so a full collection scans only what
    the jobs made."""
    _harness.single_thread_env()
    info: dict[str, Any] = {"engine": engine, "pid": os.getpid()}
    try:
        tokenizer = _harness.load_tokenizer(tokenizer_name)
        try:
            import torch

            torch.set_num_threads(1)
        except ImportError:
            pass
        t0 = _ns()
        adapter = ADAPTERS[engine](tokenizer)
        info["prep_ns"] = _ns() - t0
        bitmask = adapter.allocate()
        warm = {}
        for kind in warmup_kinds:
            spec = WARMUP_JOBS[kind]
            job = dict(spec, tests=[{"valid": True, "tokens": _harness.encode(tokenizer, spec["text"])}])
            t0 = _ns()
            r = run_job(adapter, job, bitmask)
            warm[kind] = {"ns": _ns() - t0, "status": r["status"], "error": r.get("error"),
                          "passed": r.get("passed", False)}
        info["warmup"] = warm
        if gc_freeze:
            gc.collect()
            gc.freeze()
            atexit.register(gc.unfreeze)  # finalised at exit as usual
        gc.callbacks.append(GC_WATCH)
        info["ok"] = True
    except Exception as e:
        info.update(ok=False, error=f"{type(e).__name__}: {e}", trace=traceback.format_exc())
        conn.send(("ready", info))
        return
    conn.send(("ready", info))
    while True:
        try:
            msg = conn.recv()
        except EOFError:
            return
        if msg[0] == "stop":
            return
        conn.send(("result", run_job(adapter, msg[1], bitmask)))


def _rss_bytes(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


class EngineProcess:
    """A spawned worker for one engine, restarted after a timeout, crash or memory overrun."""

    def __init__(self, engine: str, tokenizer_name: str, *, warmup_kinds: list[str],
                 timeout_s: float, max_rss_mb: int = 8000, start_timeout_s: float = 600,
                 gc_freeze: bool = False) -> None:
        self.engine = engine
        self.gc_freeze = gc_freeze
        self.tokenizer_name = tokenizer_name
        self.warmup_kinds = list(warmup_kinds)
        self.timeout_s = timeout_s
        self.max_rss = max_rss_mb * 1024 * 1024
        self.start_timeout_s = start_timeout_s
        self.ctx = mp.get_context("spawn")
        self.proc = None
        self.conn = None
        self.infos: list[dict] = []  # one per start; the first holds the cold figures
        self.restarts = 0

    @property
    def info(self) -> dict:
        return self.infos[0] if self.infos else {}

    def start(self) -> dict:
        parent, child = self.ctx.Pipe()
        self.proc = self.ctx.Process(
            target=worker_main, args=(child, self.engine, self.tokenizer_name, self.warmup_kinds, self.gc_freeze),
            daemon=True, name=f"bench-{self.engine}",
        )
        self.proc.start()
        child.close()
        self.conn = parent
        if not parent.poll(self.start_timeout_s):
            self._kill()
            info = {"engine": self.engine, "ok": False, "error": "worker did not start in time"}
        else:
            try:
                _, info = parent.recv()
            except EOFError:
                self._kill()
                info = {"engine": self.engine, "ok": False, "error": "worker died while starting"}
        self.infos.append(info)
        return info

    def _kill(self) -> None:
        if self.proc is not None and self.proc.is_alive():
            self.proc.kill()
        if self.proc is not None:
            self.proc.join(5)
        if self.conn is not None:
            self.conn.close()
        self.proc = None
        self.conn = None

    def run(self, job: dict) -> dict:
        """Run one job; a timeout, crash or memory overrun is a result, not an exception."""
        if self.proc is None:
            self.restarts += 1
            info = self.start()
            if not info.get("ok"):
                return {"id": job["id"], "engine": self.engine, "status": "crash",
                        "error": f"restart failed: {info.get('error')}"}
        self.conn.send(("job", job))
        deadline = time.monotonic() + self.timeout_s
        status, error = None, None
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                status, error = "timeout", f"no result within {self.timeout_s:g} s"
                break
            try:
                if self.conn.poll(min(left, 0.25)):
                    _, res = self.conn.recv()
                    return res
            except (EOFError, OSError):
                status, error = "crash", f"worker exited (code {self.proc.exitcode})"
                break
            if not self.proc.is_alive():
                status, error = "crash", f"worker exited (code {self.proc.exitcode})"
                break
            rss = _rss_bytes(self.proc.pid)
            if rss > self.max_rss:
                status, error = "memory", f"worker RSS {rss >> 20} MiB over {self.max_rss >> 20} MiB"
                break
        self._kill()
        return {"id": job["id"], "engine": self.engine, "status": status, "error": error}

    def close(self) -> None:
        if self.conn is not None:
            try:
                self.conn.send(("stop",))
            except (OSError, BrokenPipeError):
                pass
        if self.proc is not None:
            self.proc.join(10)
        self._kill()
