"""Benchmark the CacheBlend KV deviation at a check layer (+ top-15% selection): torch vs Triton.

One layer's K and V, new and old, (kv_heads, T, head_dim) each. Bytes moved: read the four
tensors, write (T,) float32. Selection (a sort of T values) is reported too, torch only.
Run: python benchmarks/bench_kv_deviation.py [--device cpu|cuda] [--tokens 4096,...] [--json OUT]
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
from blendcache.kernels.ref import kv_deviation_torch, select_tokens_torch

RECOMPUTE_RATIO = 0.15
QUERY_TOKENS = 32


def bench_tokens(report: Report, args: BenchArgs, tokens: int) -> None:
    shape = (KV_HEADS, tokens, HEAD_DIM)
    kv = [
        torch.randn(shape, device=args.device).to(args.dtype) for _ in range(4)
    ]  # k_new, k_old, v_new, v_old
    triton_fn = None
    if report.triton_ran:
        from blendcache.kernels.deviation import kv_deviation_triton

        triton_fn = lambda: kv_deviation_triton(*kv)  # noqa: E731
    compare(
        report,
        args,
        op="kv_deviation",
        tokens=tokens,
        shapes={"k_new": shape, "k_old": shape, "v_new": shape, "v_old": shape},
        bytes_moved=nbytes(*kv) + tokens * 4,
        torch_fn=lambda: kv_deviation_torch(*kv),
        triton_fn=triton_fn,
    )
    deviation = kv_deviation_torch(*kv)
    always = torch.arange(max(0, tokens - QUERY_TOKENS), tokens, device=args.device)
    n_select = int(RECOMPUTE_RATIO * tokens)
    compare(
        report,
        args,
        op="select_tokens",
        tokens=tokens,
        shapes={"deviation": (tokens,), "always": tuple(always.shape)},
        bytes_moved=tokens * 4,
        torch_fn=lambda: select_tokens_torch(deviation, n_select, always=always),
    )


def main() -> None:
    run("kv_deviation", __doc__.splitlines()[0], bench_tokens)


if __name__ == "__main__":
    main()
