"""Benchmark RoPE re-alignment of a chunk's keys across all layers: torch reference vs Triton.

Keys (layers, kv_heads, T, head_dim) are re-rotated by a per-token offset into a preallocated
output. Bytes moved: read K and write K.
Run: python benchmarks/bench_rope_realign.py [--device cpu|cuda] [--tokens 4096,...] [--json OUT]
"""

from __future__ import annotations

import torch

from blendcache.benchmarks._kernel_bench import (
    HEAD_DIM,
    KV_HEADS,
    LAYERS,
    BenchArgs,
    Report,
    compare,
    nbytes,
    run,
)
from blendcache.kernels.ref import rope_realign_torch
from blendcache.kernels.rope_freq import rope_inv_freq

LLAMA3_SCALING = {
    "rope_type": "llama3",
    "factor": 8.0,
    "low_freq_factor": 1.0,
    "high_freq_factor": 4.0,
    "original_max_position_embeddings": 8192,
}


def bench_tokens(report: Report, args: BenchArgs, tokens: int) -> None:
    inv_freq = rope_inv_freq(HEAD_DIM, 500000.0, LLAMA3_SCALING).to(args.device)
    k = torch.randn(LAYERS, KV_HEADS, tokens, HEAD_DIM, device=args.device).to(args.dtype)
    delta = torch.randint(-tokens, tokens, (tokens,), device=args.device)
    out = torch.empty_like(k)
    triton_fn = None
    if report.triton_ran:
        from blendcache.kernels.rope import rope_realign_triton

        triton_fn = lambda: rope_realign_triton(k, delta, inv_freq, out=out)  # noqa: E731
    compare(
        report,
        args,
        op="rope_realign",
        tokens=tokens,
        shapes={"k": tuple(k.shape), "delta": tuple(delta.shape)},
        bytes_moved=2 * nbytes(k),
        torch_fn=lambda: rope_realign_torch(k, delta, inv_freq, out=out),
        triton_fn=triton_fn,
    )


def main() -> None:
    run("rope_realign", __doc__.splitlines()[0], bench_tokens)


if __name__ == "__main__":
    main()
