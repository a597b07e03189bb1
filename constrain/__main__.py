"""``python -m constrain`` (or ``constrain``): ``serve`` an OpenAI-compatible API, run the
``demo``, or ``warmup`` (compile the kernels into the disk cache ahead of any request)."""

from __future__ import annotations

import argparse
import os
from typing import Sequence


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="constrain", description="Structured-output decoding for language models.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    serve = commands.add_parser("serve", help="serve a model over an OpenAI-compatible HTTP API",
                                description="Serve a model over an OpenAI-compatible HTTP API "
                                            "(see constrain.serving.server for the fields it takes).")
    serve.add_argument("--model", metavar="DIR", help="a transformers checkpoint directory "
                                                      "(default: the bundled SmolLM2-135M-Instruct)")
    serve.add_argument("--model-name", help="the name /v1/models lists (default: the directory's name)")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000, help="0 picks a free port")
    serve.add_argument("--max-batch-size", type=int, default=16, help="rows generated at once")
    serve.add_argument("--kv-cache-tokens", type=int, default=None, help="prefix cache size in tokens")
    serve.add_argument("--threads", type=int, default=0, help="torch threads (default: torch's choice)")
    serve.add_argument("--log-level", default="warning", choices=["critical", "error", "warning", "info", "debug"])

    warm = commands.add_parser("warmup", help="compile numba's kernels into the disk cache (an install step)",
                               description="Compile every kernel of the mask engine into numba's disk cache, "
                                           "so that no later process waits for the JIT.")
    warm.add_argument("--jobs", type=int, default=0, help="worker processes (default: the usable cores)")
    warm.add_argument("--background", action="store_true",
                      help="at low priority, quietly (how a process that found the cache empty starts it)")

    # The demo parses its own options.
    commands.add_parser("demo", help="the quick-start job: typed JSON from the bundled model", add_help=False)

    args, rest = parser.parse_known_args(argv)
    if args.command == "demo":
        from .demo import main as demo

        demo(rest)
        return
    if rest:
        parser.error(f"unrecognized arguments: {' '.join(rest)}")
    if args.command == "warmup":
        from ._caches import numba_cache_dir
        from ._warmup import default_jobs, warmup

        jobs = args.jobs or default_jobs()
        if args.background:
            try:
                os.nice(10)
            except (AttributeError, OSError):
                pass
        seconds = warmup(jobs=jobs)
        if args.background:
            return
        print(f"kernels ready in {seconds:.1f} s ({jobs} worker{'s' if jobs > 1 else ''}); cache: {numba_cache_dir()}")
        return
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    from .serving.server import serve as run

    run(args.model, args.host, args.port, model_name=args.model_name, log_level=args.log_level,
        max_batch_size=args.max_batch_size, kv_cache_tokens=args.kv_cache_tokens)


if __name__ == "__main__":
    main()
