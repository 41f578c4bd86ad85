"""The dispatcher: path choice, lazy triton import, logging once, forced backends."""

from __future__ import annotations

import logging
import subprocess
import sys

import pytest
import torch

from blendcache.errors import KernelError
from blendcache.kernels import dispatch


@pytest.fixture
def fresh_dispatch(monkeypatch):
    """Dispatcher state isolated per test (backend, loaded-module cache, what was logged)."""
    monkeypatch.setattr(dispatch, "_backend", "auto")
    monkeypatch.setattr(dispatch, "_modules", {})
    monkeypatch.setattr(dispatch, "_logged", set())
    return dispatch


def test_importing_the_dispatcher_does_not_import_triton():
    code = (
        "import sys, torch, blendcache.kernels, blendcache.kernels.dispatch as d\n"
        "d.rope_realign(torch.zeros(1, 2, 4), 1, d.rope_inv_freq(4, 10000.0))\n"
        "assert 'triton' not in sys.modules, 'triton was imported'\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr


def test_package_reexports_the_dispatch_api():
    import blendcache.kernels as kernels

    for name in kernels.__all__:
        assert getattr(kernels, name) is getattr(dispatch, name)
    assert set(kernels.__all__) == set(dispatch.__all__)


def test_auto_runs_torch_for_cpu_tensors_and_logs_once(fresh_dispatch, caplog):
    x = torch.randn(2, 5, 8)
    with caplog.at_level(logging.INFO, logger="blendcache.kernels"):
        fresh_dispatch.quantize_int8(x)
        fresh_dispatch.quantize_int8(x)
        fresh_dispatch.gather_rows(x, torch.tensor([1]))

    messages = [r.getMessage() for r in caplog.records if r.name == "blendcache.kernels"]
    assert messages == [
        "quantize_int8 runs on torch: data not on a CUDA device",
        "gather_rows runs on torch: data not on a CUDA device",
    ]
    assert fresh_dispatch._modules == {}  # the kernel modules (and triton) were never loaded


def test_forced_triton_with_broken_kernels_raises(fresh_dispatch):
    fresh_dispatch._modules["kvcodec"] = "ImportError: libcuda.so not found"
    fresh_dispatch.set_backend("triton")
    with pytest.raises(KernelError, match="libcuda.so not found"):
        fresh_dispatch.quantize_int8(torch.randn(2, 8))
    assert "libcuda.so" in fresh_dispatch.triton_status()


def test_auto_falls_back_to_torch_with_a_warning_when_kernels_do_not_load(fresh_dispatch, caplog):
    fresh_dispatch._modules["kvcodec"] = "ImportError: broken triton"
    x = torch.randn(2, 8)
    with caplog.at_level(logging.INFO, logger="blendcache.kernels"):
        kernels = fresh_dispatch._triton_module("quantize_int8", "kvcodec", _FakeCuda(x))

    assert kernels is None
    (record,) = caplog.records
    assert record.levelno == logging.WARNING and "broken triton" in record.getMessage()


def test_forced_torch_never_loads_kernels(fresh_dispatch):
    with fresh_dispatch.use_backend("torch"):
        assert fresh_dispatch.get_backend() == "torch"
        assert fresh_dispatch._triton_module("kv_deviation", "deviation", _FakeCuda(torch.zeros(1))) is None
    assert fresh_dispatch.get_backend() == "auto"
    assert fresh_dispatch._modules == {}


def test_forced_triton_uses_the_kernel_module(fresh_dispatch, device):
    fresh_dispatch.set_backend("triton")
    module = fresh_dispatch._triton_module("scatter_kv", "scatter", torch.zeros(1, device=device))
    assert module is not None and hasattr(module, "scatter_kv_triton")


def test_set_backend_rejects_unknown_names():
    with pytest.raises(KernelError, match="cuda"):
        dispatch.set_backend("cuda")


def test_both_paths_agree_through_dispatch(backend):
    """One call per op through the public API; the per-op files hold the full sweeps."""
    x = torch.randn(3, 33, 64, generator=torch.Generator().manual_seed(0))
    idx = torch.tensor([32, 0, 5])
    inv_freq = dispatch.rope_inv_freq(64, 10000.0)
    delta = torch.arange(33) - 16

    torch.testing.assert_close(
        dispatch.rope_realign(x, delta, inv_freq),
        dispatch.ref.rope_realign_torch(x, delta, inv_freq),
        atol=1e-5,
        rtol=1e-5,
    )
    torch.testing.assert_close(
        dispatch.kv_deviation(x, x * 0.5), 0.25 * x.square().sum(dim=(0, 2)), atol=1e-4, rtol=1e-5
    )
    assert torch.equal(dispatch.gather_rows(x, idx), x[:, idx])
    q, scale = dispatch.quantize_int8(x)
    assert torch.equal(q, dispatch.ref.quantize_int8_torch(x)[0])  # fmt: skip


class _FakeCuda:
    """Stands in for a CUDA tensor in the path choice (this machine may have no GPU)."""

    is_cuda = True
    device = torch.device("cuda")

    def __init__(self, tensor: torch.Tensor):
        self.tensor = tensor
