"""Shared helpers for the kernel benchmarks (bench_rope_realign, bench_kv_deviation, ...).

Each benchmark times the torch reference and, on CUDA, the Triton kernel on Llama-3-8B-like
shapes (32 layers, 8 kv heads, head_dim 128) and reports milliseconds and GB/s (bytes moved /
time). Results record device, dtype, shapes, torch/triton versions and the git revision.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from importlib import metadata
from pathlib import Path

import torch

from blendcache.benchmarks._common import cpu_name, git_revision

LAYERS, KV_HEADS, HEAD_DIM = 32, 8, 128  # Llama-3-8B
CUDA_TOKENS = (4096, 8192, 16384, 32768)
CPU_TOKENS = (512, 1024)  # small enough that each benchmark finishes in well under a minute on CPU
DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}


@dataclass(frozen=True)
class BenchArgs:
    device: str
    tokens: tuple[int, ...]
    dtype: torch.dtype
    json_path: Path | None
    warmup: int
    reps: int


@dataclass
class Measurement:
    op: str
    impl: str  # "torch" or "triton"
    tokens: int
    shapes: dict[str, list[int]]
    ms: float  # median over reps
    gbps: float  # bytes moved / median time


@dataclass
class Report:
    benchmark: str
    device: str
    device_name: str
    dtype: str
    torch_version: str
    triton_version: str | None
    git_rev: str
    triton_ran: bool
    note: str
    options: dict = field(default_factory=dict)  # the run's options (tokens, warmup, reps)
    results: list[Measurement] = field(default_factory=list)


def parse_args(description: str) -> BenchArgs:
    parser = argparse.ArgumentParser(description=description)
    default_device = "cuda" if torch.cuda.is_available() else "cpu"
    parser.add_argument("--device", choices=["cpu", "cuda"], default=default_device)
    parser.add_argument(
        "--tokens", help="comma-separated token counts (default: 4k-32k on cuda, 512,1024 on cpu)"
    )
    parser.add_argument("--dtype", choices=sorted(DTYPES), default="bfloat16")
    parser.add_argument("--json", dest="json_path", type=Path, help="write the results as JSON here")
    parser.add_argument("--warmup", type=int, default=None)
    parser.add_argument("--reps", type=int, default=None)
    ns = parser.parse_args()
    if ns.device == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda but torch sees no CUDA device")
    on_cuda = ns.device == "cuda"
    tokens = (
        tuple(int(t) for t in ns.tokens.split(",")) if ns.tokens else (CUDA_TOKENS if on_cuda else CPU_TOKENS)
    )
    return BenchArgs(
        device=ns.device,
        tokens=tokens,
        dtype=DTYPES[ns.dtype],
        json_path=ns.json_path,
        warmup=ns.warmup if ns.warmup is not None else (10 if on_cuda else 1),
        reps=ns.reps if ns.reps is not None else (50 if on_cuda else 3),
    )


def new_report(benchmark: str, args: BenchArgs) -> Report:
    triton_ran = args.device == "cuda"
    note = (
        "torch reference vs Triton kernel"
        if triton_ran
        else ("CPU run: torch reference only (the Triton kernels need a CUDA device)")
    )
    return Report(
        benchmark=benchmark,
        device=args.device,
        device_name=_device_name(args.device),
        dtype=str(args.dtype).removeprefix("torch."),
        torch_version=torch.__version__,
        triton_version=_version("triton"),
        git_rev=git_revision(),
        triton_ran=triton_ran,
        note=note,
        options={"tokens": list(args.tokens), "warmup": args.warmup, "reps": args.reps,
                 "shape": {"layers": LAYERS, "kv_heads": KV_HEADS, "head_dim": HEAD_DIM}},
    )


def time_ms(fn: Callable[[], object], args: BenchArgs) -> float:
    """Median wall time of fn() in milliseconds (CUDA synchronised around each call)."""
    sync = torch.cuda.synchronize if args.device == "cuda" else (lambda: None)
    for _ in range(args.warmup):
        fn()
    sync()
    times = []
    for _ in range(args.reps):
        start = time.perf_counter()
        fn()
        sync()
        times.append((time.perf_counter() - start) * 1e3)
    return statistics.median(times)


def compare(
    report: Report,
    args: BenchArgs,
    *,
    op: str,
    tokens: int,
    shapes: dict[str, tuple[int, ...]],
    bytes_moved: int,
    torch_fn: Callable[[], object],
    triton_fn: Callable[[], object] | None = None,
) -> None:
    """Time the torch reference, and the Triton kernel when this run has one (CUDA only)."""
    impls = [("torch", torch_fn)] + ([("triton", triton_fn)] if report.triton_ran and triton_fn else [])
    for impl, fn in impls:
        ms = time_ms(fn, args)
        shape_lists = {name: list(shape) for name, shape in shapes.items()}
        m = Measurement(op, impl, tokens, shape_lists, ms, bytes_moved / ms / 1e6)
        report.results.append(m)
        print(f"{op:<16} {impl:<7} T={tokens:<6} {ms:10.3f} ms {m.gbps:9.2f} GB/s  {_fmt_shapes(m.shapes)}")


def finish(report: Report, args: BenchArgs) -> None:
    print(f"# {report.note}; device={report.device_name} dtype={report.dtype} "
          f"torch={report.torch_version} triton={report.triton_version} rev={report.git_rev}")  # fmt: skip
    if args.json_path is not None:
        args.json_path.parent.mkdir(parents=True, exist_ok=True)
        args.json_path.write_text(json.dumps(asdict(report), indent=2) + "\n")
        print(f"# wrote {args.json_path}")


def run(benchmark: str, description: str, bench_tokens: Callable[[Report, BenchArgs, int], None]) -> None:
    """The whole benchmark: parse the flags, measure every token count, print and save."""
    args = parse_args(description)
    report = new_report(benchmark, args)
    for tokens in args.tokens:
        bench_tokens(report, args, tokens)
    finish(report, args)


def nbytes(*tensors: torch.Tensor) -> int:
    return sum(t.numel() * t.element_size() for t in tensors)


def _fmt_shapes(shapes: dict[str, list[int]]) -> str:
    return " ".join(f"{name}={tuple(shape)}" for name, shape in shapes.items())


def _device_name(device: str) -> str:
    return torch.cuda.get_device_name() if device == "cuda" else cpu_name()


def _version(package: str) -> str | None:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None
