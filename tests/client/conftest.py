"""A real blendcache server on loopback over the tiny model (``serve``), and the settings the SDK
tests share (``sdk_settings``: chunks fused from the first request, so that outcomes do not
depend on when a cold request's chunks are stored after its response)."""

import contextlib

import pytest

from blendcache.config import BlendConfig, StorageConfig


@pytest.fixture
def sdk_settings(make_settings, tmp_path):
    """``sdk_settings(name="server", **sections)``: tiny settings with data under
    ``tmp_path/name`` (each name its own database)."""

    def make(name: str = "server", **sections):
        sections.setdefault("blend", BlendConfig(max_missing_share=1.0))
        return make_settings(storage=StorageConfig(data_dir=str(tmp_path / name)), **sections)

    return make


@pytest.fixture
def serve(tiny_engine, embedder, sdk_settings):
    """``serve(settings=None) -> base URL``: a real server on loopback until the test ends."""
    from blendcache.middleware.app import create_app
    from blendcache.middleware.server import serving

    with contextlib.ExitStack() as stack:
        def start(settings=None) -> str:
            app = create_app(settings or sdk_settings(), engine=tiny_engine, embedder=embedder)
            return stack.enter_context(serving(app))

        yield start
