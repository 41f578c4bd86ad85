"""blendcache: semantic and chunk-level cache middleware for retrieval-augmented generation.

Public API (everything else is internal)::

    from blendcache import Settings, load_settings, create_app, load_engine
    from blendcache import build_chunk_cache, warm   # store documents' chunk KVs ahead
    from blendcache import Client, AsyncClient, BlendCache   # the SDK (client/), ChatResult...
"""

import os as _os
import sys as _sys

# NOTE: the repository root is this package, so with the root on sys.path (``python -m
# blendcache....`` run from a checkout puts the working directory there) its folders would
# shadow top-level packages of the same name: transformers then imports our kernels/ in place
# of the PyPI package ``kernels`` and fails. Nothing is ever imported from the root that way.
_ROOT = _os.path.dirname(_os.path.realpath(__file__))
_sys.path[:] = [p for p in _sys.path if _os.path.realpath(p or _os.curdir) != _ROOT]

from blendcache.config import (
    DEFAULT_TENANT,
    AuthConfig,
    BlendConfig,
    CategoryConfig,
    ModelConfig,
    SemanticConfig,
    ServerConfig,
    Settings,
    StorageConfig,
    TenantConfig,
    UpstreamConfig,
    load_settings,
)
from blendcache.errors import (
    BlendCacheError,
    CacheError,
    ConfigError,
    CorruptBlobError,
    InvalidRequestError,
    KernelError,
    ModelError,
    RequestError,
    StorageError,
    UnsupportedModelError,
    UpstreamError,
)

__version__ = "0.1.0"


def create_app(settings: Settings | None = None, **kwargs):
    """The FastAPI app (imported lazily: the web stack is not needed by library users)."""
    from blendcache.middleware.app import create_app as _create_app

    return _create_app(settings or Settings(), **kwargs)


def load_engine(config: ModelConfig | None = None, **kwargs):
    """Load the language model engine (see recompute/model.py)."""
    from blendcache.recompute.model import load_engine as _load_engine

    return _load_engine(config or ModelConfig(), **kwargs)


def build_chunk_cache(settings: Settings, engine):
    """The chunk KV cache a server with ``settings`` uses (see chunk_cache/cache.py)."""
    from blendcache.chunk_cache.cache import build_chunk_cache as _build

    return _build(settings, engine)


def warm(cache, documents: list[str], **kwargs):
    """Prefill and store the chunk KVs of ``documents`` not stored yet (chunk_cache/warm.py)."""
    from blendcache.chunk_cache.warm import warm as _warm

    return _warm(cache, documents, **kwargs)


# The SDK (client/), imported on first use: ``blendcache.Client`` loads httpx, not the model.
_SDK = ("AsyncClient", "BlendCache", "ChatResult", "Client", "LookupResult", "Stats",
        "StreamEvent", "TenantStats", "Usage", "WarmResult")


def __getattr__(name: str):
    if name in _SDK:
        from blendcache import client

        return getattr(client, name)
    raise AttributeError(f"module 'blendcache' has no attribute {name!r}")


__all__ = [
    "AsyncClient",
    "BlendCache",
    "ChatResult",
    "Client",
    "LookupResult",
    "Stats",
    "StreamEvent",
    "TenantStats",
    "Usage",
    "WarmResult",
    "DEFAULT_TENANT",
    "AuthConfig",
    "BlendConfig",
    "BlendCacheError",
    "CacheError",
    "CategoryConfig",
    "ConfigError",
    "CorruptBlobError",
    "InvalidRequestError",
    "KernelError",
    "ModelConfig",
    "ModelError",
    "RequestError",
    "SemanticConfig",
    "ServerConfig",
    "Settings",
    "StorageConfig",
    "StorageError",
    "TenantConfig",
    "UnsupportedModelError",
    "UpstreamConfig",
    "UpstreamError",
    "build_chunk_cache",
    "create_app",
    "load_engine",
    "load_settings",
    "warm",
    "__version__",
]
