"""Kernel test fixtures. The Triton kernels run in triton's interpreter on CPU (TRITON_INTERPRET=1).

The variable must be set before the kernel modules are imported (``triton.jit`` reads it when
it decorates). Export TRITON_INTERPRET=0 on a CUDA machine to test the compiled kernels instead.
"""

from __future__ import annotations

import os

os.environ.setdefault("TRITON_INTERPRET", "1")

import pytest  # noqa: E402
import torch  # noqa: E402

# (dtype, atol, rtol) for results computed in float32 and rounded once to dtype. The interpreter
# rounds float32 -> bfloat16 toward zero (the GPU rounds to nearest), hence one full bf16 ulp.
DTYPE_TOLERANCES = [
    (torch.float32, 1e-5, 1e-5),
    (torch.float16, 1e-3, 1e-3),
    (torch.bfloat16, 1e-2, 1.6e-2),
]

INT32_LIMIT = 2**31


@pytest.fixture(params=DTYPE_TOLERANCES, ids=lambda p: str(p[0]).removeprefix("torch."))
def dtype_tol(request) -> tuple[torch.dtype, float, float]:
    return request.param


# The shape sweep: a test that takes all three fixtures runs over their product (32 shapes).
@pytest.fixture(params=[1, 7, 33, 257], ids=lambda n: f"T{n}")
def tokens(request) -> int:
    """Odd token counts: one token, less than a block, just over a block, many blocks."""
    return request.param


@pytest.fixture(params=[1, 2, 3, 8], ids=lambda n: f"H{n}")
def heads(request) -> int:
    """GQA-like kv head counts (3 is not a power of two)."""
    return request.param


@pytest.fixture(params=[64, 128], ids=lambda n: f"D{n}")
def head_dim(request) -> int:
    return request.param


@pytest.fixture(scope="session")
def device() -> str:
    """Where the Triton kernels can run in this process; skips the test when nowhere."""
    from blendcache.kernels.dispatch import triton_status

    status = triton_status()
    if status is not None:
        pytest.skip(f"triton kernels unavailable: {status}")
    interpreted = os.environ.get("TRITON_INTERPRET", "0") not in ("", "0")
    if not interpreted and not torch.cuda.is_available():
        pytest.skip("TRITON_INTERPRET is off and there is no CUDA device")
    device = "cpu" if interpreted else "cuda"
    _probe(device)
    return device


def _probe(device: str) -> None:
    """Run one tiny kernel; skip cleanly if triton imports but cannot run here."""
    from blendcache.kernels.scatter import gather_rows_triton

    x = torch.arange(12, dtype=torch.float32, device=device).view(4, 3)
    idx = torch.tensor([2, 0], device=device)
    try:
        got = gather_rows_triton(x, idx)
    except Exception as exc:  # noqa: BLE001 - any failure means "cannot run here"
        pytest.skip(f"triton cannot run on {device}: {type(exc).__name__}: {exc}")
    if not torch.equal(got, x[[2, 0]]):
        pytest.fail("triton probe kernel returned wrong values")


@pytest.fixture(params=["torch", "triton"])
def backend(request, device):
    """Run a dispatch-level test once per path."""
    from blendcache.kernels.dispatch import use_backend

    with use_backend(request.param):
        yield request.param


@pytest.fixture(scope="session")
def huge_fp16() -> torch.Tensor:
    """A float16 buffer of more than 2**31 elements (4 GiB of address space, almost none touched).

    torch.empty does not write the pages, so only the rows a test fills become resident. Element
    offsets into it pass 2**31, which exercises the kernels' int64 offset arithmetic.
    """
    try:
        return torch.empty(INT32_LIMIT + 2**20, dtype=torch.float16)
    except RuntimeError as exc:
        pytest.skip(f"cannot reserve 4 GiB of address space: {exc}")
