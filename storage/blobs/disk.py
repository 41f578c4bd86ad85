"""Local-disk tier: one safetensors file per chunk (``<dir>/<key[:2]>/<key>.kv``), written
atomically (temp file + rename), checksum verified on read, bounded in bytes (LRU by access).

The directory may be written by another process too (``blendcache warm`` next to a running
server): a file this tier has not indexed is looked for on disk and adopted when found."""

from __future__ import annotations

import os
import tempfile
import threading
from collections import OrderedDict
from pathlib import Path

from blendcache.errors import CorruptBlobError, StorageError
from blendcache.recompute.kv import KV
from blendcache.storage import kvcodec
from blendcache.storage.blobs.base import TierStats


class DiskTier:
    name = "disk"

    def __init__(self, root: str | Path, max_bytes: int, *, codec: str = "none"):
        self.root = Path(root)
        self.max_bytes = max_bytes
        self.codec = codec
        self.stats = TierStats()
        self._lock = threading.Lock()
        self._sizes: OrderedDict[str, int] = OrderedDict()  # key -> file bytes, oldest first
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            self._scan()
        except OSError as exc:
            raise StorageError(f"disk tier at {self.root}: {exc}") from exc

    def _scan(self) -> None:
        files = sorted(self.root.glob("*/*.kv"), key=lambda p: p.stat().st_mtime)
        for path in files:
            self._sizes[path.stem] = path.stat().st_size
        self.stats.bytes = sum(self._sizes.values())
        self.stats.entries = len(self._sizes)

    def path(self, key: str) -> Path:
        return self.root / key[:2] / f"{key}.kv"

    def get_many(self, keys: list[str]) -> dict[str, KV]:
        out = {}
        for key in keys:
            kv = self._get(key)
            if kv is not None:
                out[key] = kv
        return out

    def _get(self, key: str) -> KV | None:
        path = self.path(key)
        try:
            blob = path.read_bytes()
        except FileNotFoundError:  # never written, or removed by another process
            self.stats.misses += 1
            if key in self._sizes:
                self.delete_many([key])
            return None
        except OSError as exc:
            raise StorageError(f"cannot read {path}: {exc}") from exc
        try:
            kv = kvcodec.decode(blob, where=str(path))
        except CorruptBlobError:
            # NOTE: a corrupt blob is never served: drop it; the caller recomputes the chunk.
            self.stats.corrupt += 1
            self.stats.misses += 1
            self.delete_many([key])
            return None
        with self._lock:
            if key in self._sizes:
                self._sizes.move_to_end(key)
            else:
                self._adopt(key, len(blob))
        os.utime(path)  # the access order survives a restart
        self.stats.hits += 1
        return kv

    def put_many(self, items: dict[str, KV]) -> list[str]:
        evicted: list[str] = []
        for key, kv in items.items():
            blob = kvcodec.encode(kv, self.codec)
            self._write(self.path(key), blob)
            with self._lock:
                self.stats.bytes += len(blob) - self._sizes.pop(key, 0)
                self._sizes[key] = len(blob)
                self.stats.puts += 1
                while self.stats.bytes > self.max_bytes and len(self._sizes) > 1:
                    oldest = next(iter(self._sizes))
                    self._remove(oldest)
                    self.stats.evictions += 1
                    evicted.append(oldest)
                self.stats.entries = len(self._sizes)
        return evicted

    def _write(self, path: Path, blob: bytes) -> None:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
            with os.fdopen(fd, "wb") as fh:
                fh.write(blob)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, path)
        except OSError as exc:
            raise StorageError(f"cannot write {path}: {exc}") from exc

    def _remove(self, key: str) -> None:
        self.stats.bytes -= self._sizes.pop(key, 0)
        try:
            self.path(key).unlink()
        except FileNotFoundError:
            pass

    def delete_many(self, keys: list[str]) -> None:
        with self._lock:
            for key in keys:
                self._remove(key)
            self.stats.entries = len(self._sizes)

    def keys(self) -> list[str]:
        with self._lock:
            return list(self._sizes)

    def __contains__(self, key: str) -> bool:
        if key in self._sizes:
            return True
        path = self.path(key)  # written by another process since this tier indexed its files?
        try:
            size = path.stat().st_size
        except FileNotFoundError:
            return False
        except OSError as exc:
            raise StorageError(f"cannot stat {path}: {exc}") from exc
        with self._lock:
            self._adopt(key, size)
        return True

    def _adopt(self, key: str, size: int) -> None:
        """Index a file another process wrote (counted from now on; evicted like any other)."""
        if key not in self._sizes:
            self._sizes[key] = size
            self.stats.bytes += size
            self.stats.entries = len(self._sizes)
