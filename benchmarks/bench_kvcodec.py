"""Benchmark the per-token int8 KV codec on a whole chunk (K and V of all layers): torch vs Triton.

x (2, layers, kv_heads, T, head_dim). Bytes moved: quantize reads x and writes int8 q plus one
float32 scale per row; dequantize the reverse. Also prints the stored size relative to x.
Run: python benchmarks/bench_kvcodec.py [--device cpu|cuda] [--tokens 4096,...] [--json OUT]
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
from blendcache.kernels.ref import dequantize_int8_torch, quantize_int8_torch


def bench_tokens(report: Report, args: BenchArgs, tokens: int) -> None:
    x = torch.randn(2, LAYERS, KV_HEADS, tokens, HEAD_DIM, device=args.device).to(args.dtype)
    q, scale = quantize_int8_torch(x)
    ratio = nbytes(q, scale) / nbytes(x)
    print(f"# T={tokens}: int8 q + float32 scale = {ratio:.3f} of the {report.dtype} bytes")
    shapes = {"x": tuple(x.shape), "q": tuple(q.shape), "scale": tuple(scale.shape)}
    quant_triton = dequant_triton = None
    if report.triton_ran:
        from blendcache.kernels.kvcodec import dequantize_int8_triton, quantize_int8_triton

        quant_triton = lambda: quantize_int8_triton(x)  # noqa: E731
        dequant_triton = lambda: dequantize_int8_triton(q, scale, args.dtype)  # noqa: E731
    common = {"tokens": tokens, "shapes": shapes, "bytes_moved": nbytes(x, q, scale)}
    compare(
        report,
        args,
        op="quantize_int8",
        torch_fn=lambda: quantize_int8_torch(x),
        triton_fn=quant_triton,
        **common,
    )
    compare(
        report,
        args,
        op="dequantize_int8",
        torch_fn=lambda: dequantize_int8_torch(q, scale, args.dtype),
        triton_fn=dequant_triton,
        **common,
    )


def main() -> None:
    run("kvcodec", __doc__.splitlines()[0], bench_tokens)


if __name__ == "__main__":
    main()
