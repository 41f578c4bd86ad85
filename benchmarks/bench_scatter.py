"""Benchmark writing recomputed tokens' K/V into the fused cache, and gathering rows: torch vs Triton.

scatter_kv: one layer's caches (kv_heads, T, head_dim) for K and V, 15% of the tokens written;
bytes moved: read k, v and write as much into the caches. gather_rows: hidden states (T, 4096),
15% of the rows; bytes moved: read and write those rows.
Run: python benchmarks/bench_scatter.py [--device cpu|cuda] [--tokens 4096,...] [--json OUT]
"""

from __future__ import annotations

import torch

from blendcache.benchmarks._kernel_bench import (
    HEAD_DIM,
    KV_HEADS,
    BenchArgs,
    Report,
    compare,
    nbytes,
    run,
)
from blendcache.kernels.ref import gather_rows_torch, scatter_kv_torch

RECOMPUTE_RATIO = 0.15
HIDDEN = 4096  # Llama-3-8B hidden size


def bench_tokens(report: Report, args: BenchArgs, tokens: int) -> None:
    n = max(1, int(RECOMPUTE_RATIO * tokens))
    idx = torch.randperm(tokens, device=args.device)[:n].sort().values
    cache_k, cache_v = (
        torch.randn(KV_HEADS, tokens, HEAD_DIM, device=args.device).to(args.dtype) for _ in "kv"
    )
    k, v = (torch.randn(KV_HEADS, n, HEAD_DIM, device=args.device).to(args.dtype) for _ in "kv")
    hidden = torch.randn(tokens, HIDDEN, device=args.device).to(args.dtype)
    scatter_triton = gather_triton = None
    if report.triton_ran:
        from blendcache.kernels.scatter import gather_rows_triton, scatter_kv_triton

        scatter_triton = lambda: scatter_kv_triton(cache_k, cache_v, idx, k, v)  # noqa: E731
        gather_triton = lambda: gather_rows_triton(hidden, idx)  # noqa: E731
    compare(
        report,
        args,
        op="scatter_kv",
        tokens=tokens,
        shapes={"cache_k": tuple(cache_k.shape), "k": tuple(k.shape), "idx": (n,)},
        bytes_moved=2 * nbytes(k, v) + nbytes(idx),
        torch_fn=lambda: scatter_kv_torch(cache_k, cache_v, idx, k, v),
        triton_fn=scatter_triton,
    )
    compare(
        report,
        args,
        op="gather_rows",
        tokens=tokens,
        shapes={"x": tuple(hidden.shape), "idx": (n,)},
        bytes_moved=2 * n * HIDDEN * hidden.element_size() + nbytes(idx),
        torch_fn=lambda: gather_rows_torch(hidden, idx),
        triton_fn=gather_triton,
    )


def main() -> None:
    run("scatter", __doc__.splitlines()[0], bench_tokens)


if __name__ == "__main__":
    main()
