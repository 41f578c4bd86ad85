import math

import pytest

from blendcache.errors import CorruptBlobError, InvalidRequestError
from blendcache.index.semantic_cache import CachedAnswer

from .conftest import make_category, make_config

NS = dict(tenant="acme", category="default", model="m1")
# an answer cut at a token limit, with its token ids: every field must come back
LONG = CachedAnswer("step 1, step 2", "length", (17, 4, 9))


def answer(text: str) -> CachedAnswer:
    return CachedAnswer(text, "stop")


def test_hit_returns_the_stored_answer(make_cache):
    cache = make_cache()
    entry_id = cache.store("How do I reset my router?", answer("hold the button"), **NS)
    hit = cache.lookup("How can I reset my router?", **NS)
    assert hit is not None
    assert (hit.entry_id, hit.response, hit.category, hit.cached_query) == (
        entry_id, answer("hold the button"), "default", "How do I reset my router?"
    )
    assert 0.9 < hit.similarity <= 1.0 + 1e-6
    assert cache.lookup("What is the capital of Peru?", **NS) is None


def test_threshold_is_per_category(make_cache):
    config = make_config(
        make_category("loose", threshold=0.8), make_category("strict", threshold=0.999)
    )
    cache = make_cache(config)
    for category in ("loose", "strict"):
        cache.store("How do I reset my router?", answer(category), tenant="t", category=category,
                    model="m")
    query = "How can I reset my router?"
    assert cache.lookup(query, tenant="t", category="loose", model="m").response == answer("loose")
    assert cache.lookup(query, tenant="t", category="strict", model="m") is None
    assert cache.lookup("How do I reset my router?", tenant="t", category="strict", model="m")


def test_ttl_expiry_with_injected_clock(make_cache, clock):
    config = make_config(
        make_category("default", ttl_s=60.0), make_category("forever", ttl_s=math.inf)
    )
    cache = make_cache(config)
    short = cache.store("Is the pool heated?", answer("yes"), **NS)
    cache.store("Is the pool heated?", answer("always"), tenant="acme", category="forever",
                model="m1")
    clock.now += 59.0
    assert cache.lookup("Is the pool heated?", **NS).entry_id == short
    clock.now += 1.0  # expires == now: gone
    assert cache.lookup("Is the pool heated?", **NS) is None
    assert cache.stats().entries == {("acme", "forever", "m1"): 1}
    assert cache.lookup("Is the pool heated?", tenant="acme", category="forever", model="m1")


def test_expire_sweeps_the_database(make_cache, clock):
    cache = make_cache(make_config(make_category("default", ttl_s=10.0)))
    cache.store("Is the pool heated?", answer("yes"), **NS)
    cache.store("Is the sauna open?", answer("no"), **NS)
    clock.now += 10.0
    assert cache.expire() == 2
    assert cache.stats().entries == {}


QUERIES = [
    "How do I reset my router?",
    "What time does the bakery open?",
    "Where is the nearest pharmacy?",
    "How much is a train ticket to Leeds?",
]


def fill(cache, clock):
    ids = []
    for text in QUERIES[:3]:
        ids.append(cache.store(text, answer(text), **NS))
        clock.now += 1.0
    return ids


def test_quota_evicts_least_recently_used(make_cache, clock):
    cache = make_cache(make_config(make_category("default", max_entries=3, eviction="lru")))
    a, b, c = fill(cache, clock)
    assert cache.lookup(QUERIES[0], **NS).entry_id == a  # a is now the most recent
    clock.now += 1.0
    d = cache.store(QUERIES[3], answer("d"), **NS)
    assert cache.lookup(QUERIES[1], **NS) is None  # b went
    kept = {cache.lookup(q, **NS).entry_id for q in (QUERIES[0], QUERIES[2], QUERIES[3])}
    assert kept == {a, c, d}
    assert cache.stats().entries == {("acme", "default", "m1"): 3}


def test_quota_evicts_least_frequently_used(make_cache, clock):
    cache = make_cache(make_config(make_category("default", max_entries=3, eviction="lfu")))
    a, b, c = fill(cache, clock)
    for _ in range(2):
        cache.lookup(QUERIES[0], **NS)
    cache.lookup(QUERIES[1], **NS)
    clock.now += 1.0
    cache.lookup(QUERIES[2], **NS)  # c: 1 hit, more recent than b's
    clock.now += 1.0
    cache.store(QUERIES[3], answer("d"), **NS)  # evicts b (1 hit, older last use)
    assert cache.lookup(QUERIES[1], **NS) is None
    assert cache.lookup(QUERIES[2], **NS).entry_id == c
    assert cache.lookup(QUERIES[0], **NS).entry_id == a


def test_context_sensitive_category_needs_the_same_fingerprint(make_cache):
    # context sensitive by default; "default" opts out here
    config = make_config(make_category("default", context_sensitive=False), make_category("rag"))
    assert config.category("rag").context_sensitive
    cache = make_cache(config)
    ns = dict(tenant="t", category="rag", model="m")
    cache.store("What does clause 4 say?", answer("x"), context_fingerprint="docs-v1", **ns)
    assert cache.lookup("What does clause 4 say?", context_fingerprint="docs-v1", **ns)
    assert cache.lookup("What does clause 4 say?", context_fingerprint="docs-v2", **ns) is None
    assert cache.lookup("What does clause 4 say?", **ns) is None
    # a category that is not context sensitive ignores the fingerprint
    cache.store("What does clause 4 say?", answer("y"), context_fingerprint="docs-v1", **NS)
    hit = cache.lookup("What does clause 4 say?", context_fingerprint="other", **NS)
    assert hit.response == answer("y")


def test_namespaces_never_cross(make_cache):
    config = make_config(make_category("default"), make_category("other"))
    cache = make_cache(config)
    query = "How do I reset my router?"
    cache.store(query, answer("acme"), **NS)
    assert cache.lookup(query, tenant="globex", category="default", model="m1") is None
    assert cache.lookup(query, tenant="acme", category="other", model="m1") is None
    assert cache.lookup(query, tenant="acme", category="default", model="m2") is None
    assert cache.lookup(query, **NS).response == answer("acme")
    with pytest.raises(InvalidRequestError):
        cache.lookup(query, tenant="acme", category="missing", model="m1")


def test_verifier_rejection_is_a_miss_and_counted(make_cache):
    cache = make_cache(make_config(make_category("default", threshold=0.6)))
    cache.store("Is the bakery open on Sundays?", answer("yes"), **NS)
    assert cache.lookup("Is the bakery closed on Sundays?", **NS) is None
    assert cache.lookup("Is the bakery open on Mondays?", **NS) is None
    stats = cache.stats()
    assert (stats.lookups, stats.hits, stats.misses) == (2, 0, 2)
    assert stats.rejections["negation"] == 1 and stats.rejections["number_date"] == 1
    config = make_config(make_category("default", threshold=0.6), verify=False)
    unverified = make_cache(config, db="u.db")
    unverified.store("Is the bakery open on Sundays?", answer("yes"), **NS)
    assert unverified.lookup("Is the bakery closed on Sundays?", **NS).response == answer("yes")


def test_entries_survive_a_restart(make_cache, clock):
    cache = make_cache()
    entry_id = cache.store("How do I reset my router?", LONG, **NS)
    cache.lookup("How do I reset my router?", **NS)
    again = make_cache(db="semantic.db")  # a new cache over the same SQLite file
    hit = again.lookup("How can I reset my router?", **NS)
    assert (hit.entry_id, hit.response) == (entry_id, LONG)
    assert again.stats().entries == {("acme", "default", "m1"): 1}


def test_an_unreadable_stored_answer_is_a_storage_error(make_cache, tmp_path):
    from sqlalchemy import create_engine, text

    cache = make_cache()
    entry_id = cache.store("How do I reset my router?", answer("hold the button"), **NS)
    db = create_engine(f"sqlite:///{tmp_path / 'semantic.db'}")
    with db.begin() as conn:
        conn.execute(text("UPDATE semantic_entries SET response = :r WHERE id = :i"),
                     {"r": '{"answer": "no text field"}', "i": entry_id})
    db.dispose()
    with pytest.raises(CorruptBlobError, match=f"semantic entry {entry_id}"):
        cache.lookup("How do I reset my router?", **NS)


def test_restart_drops_expired_rows(make_cache, clock):
    cache = make_cache(make_config(make_category("default", ttl_s=5.0)))
    cache.store("How do I reset my router?", answer("x"), **NS)
    clock.now += 5.0
    again = make_cache(make_config(make_category("default", ttl_s=5.0)))
    assert again.stats().entries == {}
    assert again.lookup("How do I reset my router?", **NS) is None


def test_delete_then_rebuild_keeps_the_rest(make_cache):
    cache = make_cache(make_config(rebuild_ratio=0.5))
    ids = [cache.store(q, answer(q), **NS) for q in QUERIES]
    assert cache.delete(ids[:3]) == 3  # 3/4 deleted: past the ratio, the index is rebuilt
    assert cache.lookup(QUERIES[0], **NS) is None
    assert cache.lookup(QUERIES[3], **NS).entry_id == ids[3]
    new_id = cache.store(QUERIES[0], answer("again"), **NS)
    assert cache.lookup(QUERIES[0], **NS).entry_id == new_id


@pytest.mark.parametrize("backend", ["faiss", "faiss-flat"])
def test_faiss_backend_gives_the_same_hits_as_hnswlib(make_cache, backend):
    results = {}
    for name in ("hnswlib", backend):
        cache = make_cache(make_config(backend=name), db=f"{name}.db")
        for q in QUERIES:
            cache.store(q, answer(q), **NS)
        probes = [
            "How can I reset my router?", "When does the bakery open?", "Is it sunny in Rome?"
        ]
        results[name] = [getattr(cache.lookup(p, **NS), "response", None) for p in probes]
    assert results["hnswlib"] == results[backend] == [answer(QUERIES[0]), answer(QUERIES[1]), None]


def test_category_choice_by_name_prototype_or_default(make_cache):
    config = make_config(
        make_category("default"),
        make_category("weather", examples=("Will it rain tomorrow?", "What's the forecast?")),
    )
    cache = make_cache(config)
    assert cache.choose_category("Is it going to rain at the weekend?") == "weather"
    assert cache.choose_category("Who painted the Mona Lisa?") == "default"
    assert cache.choose_category("anything", "default") == "default"
    with pytest.raises(InvalidRequestError):
        cache.choose_category("anything", "unknown")


def test_stats_and_timings(make_cache):
    cache = make_cache()
    cache.store("How do I reset my router?", answer("x"), **NS)
    cache.lookup("How do I reset my router?", **NS)
    cache.lookup("Where is the nearest pharmacy?", **NS)
    stats = cache.stats()
    assert (stats.lookups, stats.hits, stats.misses) == (2, 1, 1)
    assert stats.entries == {("acme", "default", "m1"): 1}
    assert len(cache.search_ms) == 2 and stats.search_ms_p50 is not None
    assert len(cache.embed_ms) == 3
    assert stats.to_dict()["entries"] == {"acme/default/m1": 1}
