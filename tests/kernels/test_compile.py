"""Compile every kernel for a real GPU target (sm_90) without a GPU.

The interpreter tests run the kernels as numpy code, which forgives things the compiler does
not (shape broadcasting, loop-carried types, int32/int64 mixing). This builds each kernel through
Triton's frontend, LLVM and ptxas in a subprocess with the interpreter off.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

KERNEL_SIGNATURES = {
    # kernel: (module, signature with {dt} for the data dtype, constexprs)
    "_rope_realign_kernel": (
        "rope",
        {"k_ptr": "*{dt}", "out_ptr": "*{dt}", "delta_ptr": "*i64", "inv_freq_ptr": "*fp32",
         "n_rows": "i32", "n_tokens": "i32", "stride_kr": "i64", "stride_kt": "i32",
         "stride_or": "i32", "stride_ot": "i32"},
        {"HALF": 64, "BLOCK_T": 32, "BLOCK_HALF": 64, "ROWS_PER_PROGRAM": 8},
    ),
    "_kv_deviation_kernel": (
        "deviation",
        {"new_ptr": "*{dt}", "old_ptr": "*{dt}", "out_ptr": "*fp32", "n_rows": "i32", "n_tokens": "i32",
         "head_dim": "i32", "stride_nr": "i64", "stride_nt": "i32", "stride_or": "i32", "stride_ot": "i32"},
        {"ACCUMULATE": True, "BLOCK_T": 32, "BLOCK_D": 128},
    ),
    "_scatter_kv_kernel": (
        "scatter",
        {"cache_ptr": "*{dt}", "src_ptr": "*{dt}", "idx_ptr": "*i32", "n_idx": "i32", "n_cols": "i32",
         "stride_cr": "i64", "stride_ct": "i32", "stride_sr": "i32", "stride_st": "i32"},
        {"BLOCK_N": 16, "BLOCK_C": 128},
    ),
    "_gather_rows_kernel": (
        "scatter",
        {"x_ptr": "*{dt}", "out_ptr": "*{dt}", "idx_ptr": "*i64", "n_idx": "i32", "n_cols": "i32",
         "stride_xr": "i32", "stride_xt": "i32", "stride_or": "i64", "stride_ot": "i32"},
        {"BLOCK_N": 16, "BLOCK_C": 256},
    ),
    "_quantize_int8_kernel": (
        "kvcodec",
        {"x_ptr": "*{dt}", "q_ptr": "*i8", "scale_ptr": "*fp32", "n_rows": "i32", "n_cols": "i32",
         "stride_xr": "i64"},
        {"BLOCK_R": 32, "BLOCK_D": 128},
    ),
    "_dequantize_int8_kernel": (
        "kvcodec",
        {"q_ptr": "*i8", "scale_ptr": "*fp32", "out_ptr": "*{dt}", "n_rows": "i32", "n_cols": "i32"},
        {"BLOCK_R": 32, "BLOCK_D": 128},
    ),
}  # fmt: skip


def compile_all(dtype: str) -> None:
    """Run with TRITON_INTERPRET unset: raises on the first kernel that does not compile."""
    import importlib

    import triton
    from triton.backends.compiler import GPUTarget
    from triton.compiler import ASTSource

    for name, (module, signature, constexprs) in KERNEL_SIGNATURES.items():
        kernel = getattr(importlib.import_module(f"blendcache.kernels.{module}"), name)
        sig = {arg: ty.format(dt=dtype) for arg, ty in signature.items()}
        sig.update(dict.fromkeys(constexprs, "constexpr"))
        assert list(sig) == list(kernel.arg_names), f"{name}: signature out of date"
        compiled = triton.compile(ASTSource(kernel, sig, constexprs), target=GPUTarget("cuda", 90, 32))
        assert ".entry" in compiled.asm["ptx"]
        print(name, "ok")


@pytest.mark.parametrize("dtype", ["bf16"])
def test_kernels_compile_for_sm90(dtype, tmp_path):
    triton = pytest.importorskip("triton")
    from triton.backends import backends

    if "nvidia" not in backends:
        pytest.skip("triton has no NVIDIA backend here")
    try:
        triton.knobs.nvidia.ptxas.path  # noqa: B018 - raises when ptxas is missing
    except Exception as exc:  # noqa: BLE001
        pytest.skip(f"no ptxas: {exc}")
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    env["TRITON_CACHE_DIR"] = str(tmp_path)  # a fresh cache: really compile
    env["TRITON_DEFAULT_FP_FUSION"] = "1"
    code = f"import runpy; runpy.run_path({__file__!r})['compile_all']({dtype!r})"
    run = [sys.executable, "-c", code]
    result = subprocess.run(run, env=env, capture_output=True, text=True, timeout=300)

    assert result.returncode == 0, result.stderr[-4000:]
    assert result.stdout.count(" ok") == len(KERNEL_SIGNATURES)
