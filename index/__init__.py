"""Semantic layer: embed the query, search its namespace, check the hit, answer from cache.

Public names are re-exported here; the modules are ``embedder``, ``hnsw`` (vector indexes),
``policy`` (categories), ``verifier``, ``semantic_cache`` and ``calibrate``.
"""

from blendcache.index.calibrate import calibrate, load_pairs, write_thresholds
from blendcache.index.embedder import DEFAULT_EMBEDDER, Embedder
from blendcache.index.hnsw import FaissIndex, HnswIndex, VectorIndex, make_index
from blendcache.index.policy import CategoryPolicy, eviction_order
from blendcache.index.semantic_cache import SemanticCache, SemanticHit, SemanticStats
from blendcache.index.verifier import REASONS, Verdict, Verifier

__all__ = [
    "DEFAULT_EMBEDDER",
    "Embedder",
    "VectorIndex",
    "HnswIndex",
    "FaissIndex",
    "make_index",
    "CategoryPolicy",
    "eviction_order",
    "Verifier",
    "Verdict",
    "REASONS",
    "SemanticCache",
    "SemanticHit",
    "SemanticStats",
    "calibrate",
    "load_pairs",
    "write_thresholds",
]
