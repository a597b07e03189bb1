"""Shared pieces of the benchmarks: thread pinning, percentiles, tables, machine info.

Every benchmark prints :func:`machine_info` first, so that a figure is never quoted
without the machine and versions that produced it.
"""

from __future__ import annotations

import importlib.metadata
import math
import os
import platform
import sys
from pathlib import Path
from typing import Iterable, Sequence

REPO_ROOT = Path(__file__).resolve().parent.parent
BENCH_DIR = Path(__file__).resolve().parent

if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

ENGINES = ("constrain", "llguidance", "xgrammar", "outlines_core")
PACKAGE_OF = {
    "constrain": "constrain",
    "llguidance": "llguidance",
    "xgrammar": "xgrammar",
    "outlines_core": "outlines-core",
}
TOKENIZERS = ("qwen2", "smollm2", "qwen3_6")

# Environment variables that cap the thread pools of the engines and their dependencies
# (rayon for the Rust engines, OpenMP/MKL for torch, numba's own pool).
THREAD_ENV = {
    "RAYON_NUM_THREADS": "1",
    "OMP_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
    "OPENBLAS_NUM_THREADS": "1",
    "NUMBA_NUM_THREADS": "1",
    "TOKENIZERS_PARALLELISM": "false",
}


def single_thread_env() -> None:
    """Pin every thread pool we know of to one thread (inherited by spawned workers)."""
    os.environ.update(THREAD_ENV)


def package_version(engine: str) -> str | None:
    """Installed version of an engine's package, or None when it is not installed."""
    try:
        return importlib.metadata.version(PACKAGE_OF.get(engine, engine))
    except importlib.metadata.PackageNotFoundError:
        return None


def installed_engines() -> list[str]:
    return [e for e in ENGINES if package_version(e) is not None]


def parse_engines(text: str | None) -> list[str]:
    """Comma-separated engine names; None means every installed engine."""
    if not text:
        return installed_engines()
    names = [t.strip() for t in text.split(",") if t.strip()]
    unknown = [n for n in names if n not in ENGINES]
    if unknown:
        raise SystemExit(f"unknown engine(s) {unknown}; choose from {', '.join(ENGINES)}")
    return names


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine_info(engines: Iterable[str] = ENGINES) -> str:
    """A few lines naming the CPU, core count, Python and the engines' versions."""
    cores = os.cpu_count()
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:
        usable = cores
    versions = ", ".join(f"{e} {package_version(e) or 'not installed'}" for e in engines)
    extra = []
    for pkg in ("numba", "numpy", "transformers", "torch"):
        try:
            extra.append(f"{pkg} {importlib.metadata.version(pkg)}")
        except importlib.metadata.PackageNotFoundError:
            pass
    return "\n".join(
        [
            f"machine : {cpu_model()}, {cores} cores ({usable} usable), {platform.system()} {platform.release()}",
            f"python  : {platform.python_implementation()} {platform.python_version()}",
            f"engines : {versions}",
            f"deps    : {', '.join(extra)}",
            f"threads : one per engine worker ({', '.join(f'{k}={v}' for k, v in THREAD_ENV.items())})",
        ]
    )


def percentile(sorted_values: Sequence[float], q: float) -> float:
    """Linear-interpolated percentile of an already sorted sequence (q in [0, 100])."""
    n = len(sorted_values)
    if n == 0:
        return math.nan
    if n == 1:
        return float(sorted_values[0])
    pos = (n - 1) * q / 100.0
    lo = int(math.floor(pos))
    hi = min(lo + 1, n - 1)
    frac = pos - lo
    return float(sorted_values[lo]) * (1.0 - frac) + float(sorted_values[hi]) * frac


def percentiles(values: Iterable[float], qs: Sequence[float]) -> list[float]:
    data = sorted(values)
    return [percentile(data, q) for q in qs]


def fmt_us(ns: float) -> str:
    """Nanoseconds as microseconds, with precision that suits the magnitude."""
    if ns is None or (isinstance(ns, float) and math.isnan(ns)):
        return "-"
    us = ns / 1000.0
    if us < 10:
        return f"{us:.2f}"
    if us < 100:
        return f"{us:.1f}"
    return f"{us:,.0f}"


def fmt_ms(ns: float) -> str:
    """Nanoseconds as milliseconds."""
    if ns is None or (isinstance(ns, float) and math.isnan(ns)):
        return "-"
    ms = ns / 1e6
    if ms < 10:
        return f"{ms:.2f}"
    if ms < 100:
        return f"{ms:.1f}"
    return f"{ms:,.0f}"


def fmt_ratio(value: float, base: float) -> str:
    """value / base as 'x.yx' (how many times slower than the base; <1 means faster)."""
    if base is None or value is None or not base or math.isnan(base) or math.isnan(value):
        return "-"
    r = value / base
    return f"{r:.2f}x" if r < 10 else f"{r:,.0f}x"


def format_table(headers: Sequence[str], rows: Sequence[Sequence[object]], title: str = "") -> str:
    """A GitHub-flavoured Markdown table: first column left-aligned, the others right-aligned."""
    cells = [[str(h) for h in headers]] + [[str(c) for c in r] for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]

    def line(row: Sequence[str]) -> str:
        parts = [row[0].ljust(widths[0])] + [c.rjust(w) for c, w in zip(row[1:], widths[1:])]
        return "| " + " | ".join(parts) + " |"

    sep = "| " + " | ".join(
        ["-" * widths[0]] + ["-" * (w - 1) + ":" for w in widths[1:]]
    ) + " |"
    out = [title] if title else []
    out.append(line(cells[0]))
    out.append(sep)
    out.extend(line(r) for r in cells[1:])
    return "\n".join(out)


def load_tokenizer(name: str):
    """A tokenizer from installed packages only (never a model hub)."""
    from constrain import assets

    loaders = {
        "qwen2": assets.qwen2_tokenizer,
        "smollm2": assets.smollm2_tokenizer,
        "qwen3_6": assets.qwen3_6_tokenizer,
    }
    if name not in loaders:
        raise SystemExit(f"unknown tokenizer {name!r}; choose from {', '.join(loaders)}")
    return loaders[name]()


def encode(tokenizer, text: str) -> list[int]:
    """Token ids of text, without special tokens."""
    return list(tokenizer.encode(text, add_special_tokens=False))
