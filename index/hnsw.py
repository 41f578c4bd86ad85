"""In-memory vector indexes over unit vectors (inner product = cosine similarity).

``HnswIndex`` wraps hnswlib (Malkov & Yashunin, HNSW); ``FaissIndex`` wraps faiss (HNSW or
flat inner product; faiss-gpu when CUDA is there). Both delete by tombstone and rebuild once the
deleted share passes ``rebuild_ratio``. Vectors: (n, dim) float32, ids: (n,) int64.
"""

from __future__ import annotations

from abc import ABC, abstractmethod

import numpy as np

from blendcache.errors import ConfigError, IndexError_


class VectorIndex(ABC):
    """The few operations the semantic cache needs from a nearest-neighbour index."""

    dim: int

    @abstractmethod
    def add(self, ids: np.ndarray, vecs: np.ndarray) -> None:
        """Add rows ``vecs`` (n, dim) under ``ids`` (n,); an id must not be live already."""

    @abstractmethod
    def search(self, vec: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Up to ``k`` live ids nearest to ``vec`` (dim,) and their similarities, best first."""

    @abstractmethod
    def mark_deleted(self, id_: int) -> None:
        """Hide ``id_`` from searches (a no-op for an unknown id)."""

    @abstractmethod
    def rebuild(self) -> None:
        """Rebuild the structure from the live vectors only."""

    @abstractmethod
    def __len__(self) -> int:
        """Number of live vectors."""

    def __contains__(self, id_: int) -> bool:
        return int(id_) in self._live_ids()

    @abstractmethod
    def _live_ids(self) -> set[int]: ...


def _check(ids: np.ndarray, vecs: np.ndarray, dim: int) -> tuple[np.ndarray, np.ndarray]:
    ids = np.asarray(ids, dtype=np.int64).reshape(-1)
    vecs = np.asarray(vecs)
    if vecs.ndim != 2 or vecs.shape[-1] != dim:
        raise IndexError_(f"vectors of shape {vecs.shape}, the index takes (n, {dim})")
    vecs = np.ascontiguousarray(vecs, dtype=np.float32).reshape(len(ids), dim)
    return ids, vecs


class HnswIndex(VectorIndex):
    """hnswlib HNSW over inner product; capacity doubles by ``resize_index`` when full."""

    def __init__(
        self,
        dim: int,
        *,
        capacity: int = 1024,
        m: int = 16,
        ef_construction: int = 200,
        ef_search: int = 64,
        rebuild_ratio: float = 0.3,
    ):
        import hnswlib

        self.dim = dim
        self._params = dict(m=m, ef_construction=ef_construction, ef_search=ef_search)
        self.rebuild_ratio = rebuild_ratio
        self._hnswlib = hnswlib
        self._live: set[int] = set()
        self._deleted: set[int] = set()
        self._index = self._new(max(capacity, 16))

    def _new(self, capacity: int):
        index = self._hnswlib.Index(space="ip", dim=self.dim)
        index.init_index(
            max_elements=capacity,
            ef_construction=self._params["ef_construction"],
            M=self._params["m"],
        )
        index.set_ef(self._params["ef_search"])
        return index

    def add(self, ids: np.ndarray, vecs: np.ndarray) -> None:
        ids, vecs = _check(ids, vecs, self.dim)
        if not len(ids):
            return
        # NOTE: hnswlib cannot re-add a label that is only marked deleted; rebuild first.
        if self._deleted.intersection(ids.tolist()):
            self.rebuild()
        needed = self._index.get_current_count() + len(ids)
        if needed > self._index.get_max_elements():
            self._index.resize_index(max(needed, 2 * self._index.get_max_elements()))
        try:
            self._index.add_items(vecs, ids)
        except RuntimeError as exc:
            raise IndexError_(f"hnswlib add failed: {exc}") from exc
        self._live.update(ids.tolist())

    def search(self, vec: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        k = min(k, len(self._live))
        if k <= 0:
            return np.empty(0, np.int64), np.empty(0, np.float32)
        query = np.asarray(vec, dtype=np.float32).reshape(1, self.dim)
        self._index.set_ef(max(self._params["ef_search"], k))
        try:
            labels, dists = self._index.knn_query(query, k=k)
        except RuntimeError as exc:
            raise IndexError_(f"hnswlib search failed: {exc}") from exc
        return labels[0].astype(np.int64), (1.0 - dists[0]).astype(np.float32)

    def mark_deleted(self, id_: int) -> None:
        id_ = int(id_)
        if id_ not in self._live:
            return
        self._index.mark_deleted(id_)
        self._live.discard(id_)
        self._deleted.add(id_)
        total = len(self._live) + len(self._deleted)
        if len(self._deleted) > self.rebuild_ratio * total:
            self.rebuild()

    def rebuild(self) -> None:
        ids = np.fromiter(sorted(self._live), dtype=np.int64, count=len(self._live))
        vecs = (
            np.asarray(self._index.get_items(ids), dtype=np.float32)
            if len(ids) else np.empty((0, self.dim), np.float32)
        )
        self._index = self._new(max(16, 2 * len(ids)))
        self._deleted.clear()
        self._live.clear()
        self.add(ids, vecs)

    def __len__(self) -> int:
        return len(self._live)

    def _live_ids(self) -> set[int]:
        return self._live


class FaissIndex(VectorIndex):
    """faiss ``IndexHNSWFlat`` (kind="hnsw") or ``IndexFlatIP`` (kind="flat") by inner product.

    NOTE: faiss HNSW cannot remove vectors, so we keep our own id map (faiss row -> id) and the
    vectors, filter tombstones out of results and rebuild past ``rebuild_ratio``.
    """

    def __init__(
        self,
        dim: int,
        *,
        kind: str = "hnsw",
        m: int = 16,
        ef_construction: int = 200,
        ef_search: int = 64,
        rebuild_ratio: float = 0.3,
        use_gpu: bool | None = None,
        capacity: int = 1024,
    ):
        try:
            import faiss
        except ImportError as exc:
            raise ImportError(
                "the faiss backend needs faiss-cpu or faiss-gpu (extra 'gpu')"
            ) from exc
        if kind not in ("hnsw", "flat"):
            raise ConfigError(f"faiss index kind must be 'hnsw' or 'flat', got {kind!r}")
        self._faiss = faiss
        self.dim = dim
        self.kind = kind
        self._params = dict(m=m, ef_construction=ef_construction, ef_search=ef_search)
        self.rebuild_ratio = rebuild_ratio
        gpus = faiss.get_num_gpus() if hasattr(faiss, "get_num_gpus") else 0
        self.use_gpu = bool(gpus) if use_gpu is None else use_gpu and bool(gpus)
        self._rows: list[int] = []  # faiss row -> id
        self._vecs = np.empty((capacity, dim), dtype=np.float32)  # rows [0, len(_rows)) used
        self._row_of: dict[int, int] = {}  # live id -> faiss row
        self._deleted = 0
        self._index = self._new()

    def _new(self):
        faiss = self._faiss
        if self.kind == "hnsw":
            index = faiss.IndexHNSWFlat(self.dim, self._params["m"], faiss.METRIC_INNER_PRODUCT)
            index.hnsw.efConstruction = self._params["ef_construction"]
            index.hnsw.efSearch = self._params["ef_search"]
            return index
        index = faiss.IndexFlatIP(self.dim)
        if self.use_gpu:  # faiss-gpu has no HNSW; flat search is where the GPU helps
            index = faiss.index_cpu_to_gpu(faiss.StandardGpuResources(), 0, index)
        return index

    def add(self, ids: np.ndarray, vecs: np.ndarray) -> None:
        ids, vecs = _check(ids, vecs, self.dim)
        if not len(ids):
            return
        for id_ in ids.tolist():
            if id_ in self._row_of:
                raise IndexError_(f"id {id_} is already in the index")
        start = len(self._rows)
        try:
            self._index.add(vecs)
        except RuntimeError as exc:
            raise IndexError_(f"faiss add failed: {exc}") from exc
        self._rows.extend(ids.tolist())
        if start + len(ids) > len(self._vecs):  # grow the vector copy by doubling
            grown = np.empty((max(2 * len(self._vecs), start + len(ids), 64), self.dim), np.float32)
            grown[:start] = self._vecs[:start]
            self._vecs = grown
        self._vecs[start:start + len(ids)] = vecs
        self._row_of.update({id_: start + i for i, id_ in enumerate(ids.tolist())})

    def search(self, vec: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        k = min(k, len(self._row_of))
        if k <= 0:
            return np.empty(0, np.int64), np.empty(0, np.float32)
        query = np.asarray(vec, dtype=np.float32).reshape(1, self.dim)
        want = min(k + self._deleted, len(self._rows))
        if self.kind == "hnsw":
            self._index.hnsw.efSearch = max(self._params["ef_search"], want)
        sims, rows = self._index.search(query, want)
        ids, out = [], []
        for row, sim in zip(rows[0].tolist(), sims[0].tolist()):
            if row < 0:
                continue
            id_ = self._rows[row]
            if self._row_of.get(id_) == row:
                ids.append(id_)
                out.append(sim)
                if len(ids) == k:
                    break
        return np.asarray(ids, np.int64), np.asarray(out, np.float32)

    def mark_deleted(self, id_: int) -> None:
        if self._row_of.pop(int(id_), None) is None:
            return
        self._deleted += 1
        if self._deleted > self.rebuild_ratio * len(self._rows):
            self.rebuild()

    def rebuild(self) -> None:
        live = sorted(self._row_of.items(), key=lambda item: item[1])
        ids = np.asarray([id_ for id_, _ in live], dtype=np.int64)
        vecs = self._vecs[[row for _, row in live]] if live else np.empty((0, self.dim), np.float32)
        self._index = self._new()
        self._rows, self._row_of, self._deleted = [], {}, 0
        self._vecs = np.empty((max(64, len(ids)), self.dim), dtype=np.float32)
        self.add(ids, vecs)

    def __len__(self) -> int:
        return len(self._row_of)

    def _live_ids(self) -> set[int]:
        return set(self._row_of)


def make_index(backend: str, dim: int, **kwargs) -> VectorIndex:
    """The index for ``SemanticConfig.backend``: "hnswlib", "faiss" (HNSW) or "faiss-flat"."""
    if backend == "hnswlib":
        return HnswIndex(dim, **kwargs)
    if backend == "faiss":
        return FaissIndex(dim, kind="hnsw", **kwargs)
    if backend == "faiss-flat":
        return FaissIndex(dim, kind="flat", **kwargs)
    raise ConfigError(f"unknown semantic backend {backend!r} (hnswlib, faiss, faiss-flat)")
