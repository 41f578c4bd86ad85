"""The blendcache exception tree: every error the package raises on purpose.

    BlendCacheError
    ├── ConfigError                 bad settings file / values (raised at start-up)
    ├── RequestError                bad client input -> HTTP 4xx in OpenAI's error shape
    │   ├── InvalidRequestError     400: malformed body, wrong types, unknown fields
    │   ├── AuthenticationError     401: missing or unknown API key
    │   └── NotFoundError           404: unknown model or resource
    ├── ModelError                  the model engine failed to load or run
    │   └── UnsupportedModelError   architecture the blend path cannot handle
    ├── CacheError                  a cache layer failed; the pipeline degrades to a plain model call
    │   ├── StorageError            database or blob tier failure (third-party errors wrapped here)
    │   │   └── CorruptBlobError    checksum mismatch on read: recompute, never serve
    │   └── IndexError_             semantic index failure (named to avoid the builtin)
    ├── KernelError                 unsupported shape/dtype for a kernel launcher
    ├── NotReadyError               503: the server cannot serve yet (GET /readyz says why)
    └── UpstreamError               the upstream OpenAI-compatible server failed

The SDK (client/) raises the same tree for a blendcache server's answers: a 4xx in OpenAI's
shape as the ``RequestError`` subclass of its status (another 4xx, e.g. 413: the subclass of
its error type, with the server's ``status_code``), with the server's message, param and code;
a 5xx, an unreachable server (502) or one that timed out (504) as an ``UpstreamError``.

Third-party exceptions are translated in exactly one place per subsystem
(``raise StorageError(...) from exc``).
"""

from __future__ import annotations


class BlendCacheError(Exception):
    """Base of every error blendcache raises on purpose."""


class ConfigError(BlendCacheError):
    """Invalid configuration: a settings file, environment variable or CLI flag."""


class RequestError(BlendCacheError):
    """A client sent something we refuse; maps to an HTTP 4xx response."""

    status_code = 400
    error_type = "invalid_request_error"

    def __init__(self, message: str, *, param: str | None = None, code: str | None = None):
        super().__init__(message)
        self.message = message
        self.param = param
        self.code = code


class InvalidRequestError(RequestError):
    status_code = 400
    error_type = "invalid_request_error"


class AuthenticationError(RequestError):
    status_code = 401
    error_type = "authentication_error"


class NotFoundError(RequestError):
    status_code = 404
    error_type = "not_found_error"


class ModelError(BlendCacheError):
    """The model engine could not load or run the model."""


class UnsupportedModelError(ModelError):
    """The model's architecture is not supported by the chunk-fusion path."""


class CacheError(BlendCacheError):
    """A cache layer failed. The pipeline catches this and serves a plain model call."""


class StorageError(CacheError):
    """The metadata database or a blob tier failed."""


class CorruptBlobError(StorageError):
    """A stored blob failed its checksum: it is dropped and recomputed, never served."""


class IndexError_(CacheError):
    """The semantic index failed."""


class KernelError(BlendCacheError):
    """A kernel launcher was given shapes or dtypes it does not support."""


class NotReadyError(BlendCacheError):
    """The server cannot serve requests now: no model loaded, the database unreachable."""


class UpstreamError(BlendCacheError):
    """The upstream OpenAI-compatible model server failed or answered with an error.

    ``status_code`` goes to the client: the upstream's own when it answered with an error (then
    ``body`` is its error body, passed through as is), 502 when it cannot be reached or broke
    off, 504 when it did not answer in time. ``code`` is OpenAI's error code field."""

    def __init__(self, message: str, *, status_code: int = 502, code: str | None = None,
                 body: dict | None = None):
        super().__init__(message)
        self.status_code = status_code
        self.code = code
        self.body = body


__all__ = [
    "BlendCacheError",
    "ConfigError",
    "RequestError",
    "InvalidRequestError",
    "AuthenticationError",
    "NotFoundError",
    "ModelError",
    "UnsupportedModelError",
    "CacheError",
    "StorageError",
    "CorruptBlobError",
    "IndexError_",
    "KernelError",
    "NotReadyError",
    "UpstreamError",
]
