"""GET /metrics, read back by prometheus_client's own parser: exact values after a known
sequence of requests (a miss, a semantic hit, a blend), each family once with its HELP and TYPE,
tenants as labels, and one registry per app. On the tiny model."""

import prometheus_client
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from blendcache.chunk_cache.layout import build_layout, format_document
from blendcache.config import AuthConfig, TenantConfig
from blendcache.recompute.select import budget, schedule

URL = "/v1/chat/completions"
DOCS = ["The Eiffel Tower was completed in 1889 for the World's Fair in Paris.",
        "Mount Fuji is the highest mountain in Japan."]
EIFFEL, FUJI = "When was the Eiffel Tower completed?", "How high is Mount Fuji?"
FAMILIES = {  # every family /metrics serves, and its type
    "blendcache_requests": "counter",
    "blendcache_ttft_seconds": "histogram",
    "blendcache_request_duration_seconds": "histogram",
    "blendcache_chunk_tokens_reused": "counter",
    "blendcache_chunk_tokens_recomputed": "counter",
    "blendcache_chunk_tier_hits": "counter",
    "blendcache_chunk_tier_misses": "counter",
    "blendcache_chunk_tier_puts": "counter",
    "blendcache_chunk_tier_evictions": "counter",
    "blendcache_chunk_tier_corrupt": "counter",
    "blendcache_chunk_tier_bytes": "gauge",
    "blendcache_chunk_tier_entries": "gauge",
    "blendcache_chunk_prefills": "counter",
    "blendcache_semantic_lookups": "counter",
    "blendcache_semantic_hits": "counter",
    "blendcache_semantic_misses": "counter",
    "blendcache_semantic_expired": "counter",
    "blendcache_semantic_rejections": "counter",
    "blendcache_semantic_entries": "gauge",
    "blendcache_chunks_deferred": "counter",
    "blendcache_chunks_warmed": "counter",
    "blendcache_semantic_bypassed": "counter",
    "blendcache_request_records_dropped": "counter",
    "blendcache_semantic_explorations": "counter",
    "blendcache_semantic_explorations_disagreed": "counter",
    "blendcache_semantic_feedback": "counter",
    "blendcache_semantic_feedback_wrong": "counter",
    "blendcache_cache_failures": "counter",
}


def ask(content: str, **extra) -> dict:
    return {"model": "default", "max_tokens": 4, "documents": DOCS,
            "messages": [{"role": "user", "content": content}], **extra}


def scrape(client, **kwargs) -> dict:
    """family name -> family, parsed by prometheus_client; a family twice fails."""
    response = client.get("/metrics", **kwargs)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain; version=")
    families = list(text_string_to_metric_families(response.text))
    names = [f.name for f in families]
    assert len(names) == len(set(names)), names
    return {f.name: f for f in families}


def values(family, sample_name: str | None = None, **match) -> dict:
    """{label values (sorted by label name): value} of the samples named ``sample_name``
    (default: the family's own) whose labels include ``match``."""
    name = sample_name or family.name + ("_total" if family.type == "counter" else "")
    return {tuple(v for k, v in sorted(s.labels.items()) if k not in match): s.value
            for s in family.samples
            if s.name == name and all(s.labels.get(k) == v for k, v in match.items())}


def test_metrics_after_a_miss_a_semantic_hit_and_a_blend(client):
    outcomes = [client.post(URL, json=ask(q)).headers["x-blendcache-cache"]
                for q in (EIFFEL, EIFFEL, FUJI)]
    assert outcomes == ["miss", "semantic-hit", "blend"]
    pipeline = client.app.state.pipeline
    layout = build_layout(pipeline.engine, [{"role": "user", "content": FUJI}],
                          [format_document(d) for d in DOCS])
    chunk_tokens = sum(len(c) for c in layout.chunks)
    metrics = scrape(client)

    assert {name: f.type for name, f in metrics.items()} == FAMILIES
    assert all(f.documentation for f in metrics.values())
    # columns: category, outcome, tenant
    assert values(metrics["blendcache_requests"]) == {("default", "miss", "default"): 1.0,
                                                      ("default", "semantic-hit", "default"): 1.0,
                                                      ("default", "blend", "default"): 1.0}
    for name in ("blendcache_ttft_seconds", "blendcache_request_duration_seconds"):
        family = metrics[name]
        assert values(family, f"{name}_count") == {
            ("miss",): 1.0, ("semantic-hit",): 1.0, ("blend",): 1.0}
        assert values(family, f"{name}_bucket", le="+Inf") == values(family, f"{name}_count")
    ttft = values(metrics["blendcache_ttft_seconds"], "blendcache_ttft_seconds_sum")
    total = values(metrics["blendcache_request_duration_seconds"],
                   "blendcache_request_duration_seconds_sum")
    assert all(0 < ttft[k] <= total[k] for k in total)
    assert values(metrics["blendcache_chunk_tokens_reused"]) == {("default",): chunk_tokens}
    assert values(metrics["blendcache_chunk_tokens_recomputed"]) == {
        ("default",): budget(chunk_tokens, schedule(0.15, (2, 8), 9)[-1])}
    # the miss stored prefix, background and 2 chunks after its response; the blend found
    # the prefix and both chunks in memory
    assert values(metrics["blendcache_chunk_tier_hits"]) == {("disk",): 0, ("memory",): 3}
    assert values(metrics["blendcache_chunk_tier_misses"]) == {("disk",): 2, ("memory",): 2}
    assert values(metrics["blendcache_chunk_tier_puts"]) == {("disk",): 4, ("memory",): 4}
    assert values(metrics["blendcache_chunk_tier_entries"]) == {("disk",): 4, ("memory",): 4}
    assert values(metrics["blendcache_chunk_tier_bytes"])[("memory",)] == \
        pipeline.chunk_cache.store.summary()["bytes"]
    assert values(metrics["blendcache_chunk_prefills"]) == {(): 4}
    assert values(metrics["blendcache_chunks_deferred"]) == {(): 2}
    assert [values(metrics[f"blendcache_semantic_{n}"])[()]
            for n in ("lookups", "hits", "misses")] == [3, 1, 2]
    assert values(metrics["blendcache_semantic_entries"]) == {
        ("default", "tiny-llama", "default"): 2}
    assert values(metrics["blendcache_cache_failures"]) == {("chunk",): 0, ("semantic",): 0}


def test_a_streamed_answer_is_counted_once_it_ends(client):
    body = ask(EIFFEL, blendcache={"cache": "off"}, stream=True)
    with client.stream("POST", URL, json=body) as response:
        assert response.headers["x-blendcache-cache"] == "miss"
        lines = list(response.iter_lines())
    assert "data: [DONE]" in lines
    requests = scrape(client)["blendcache_requests"]
    assert values(requests) == {("none", "miss", "default"): 1.0}  # no category: cache off


def test_tenants_are_labels(make_app, make_settings):
    tenants = (TenantConfig("acme", api_keys=("ka",)), TenantConfig("globex", api_keys=("kb",)))
    settings = make_settings(tenants=tenants, auth=AuthConfig(admin_token="root"))
    with TestClient(make_app(settings)) as c:
        for key in ("ka", "ka", "kb"):
            c.post(URL, json=ask(EIFFEL), headers={"authorization": f"Bearer {key}"})
        metrics = scrape(c, headers={"authorization": "Bearer root"})
    assert values(metrics["blendcache_requests"]) == {("default", "miss", "acme"): 1.0,
                                                      ("default", "semantic-hit", "acme"): 1.0,
                                                      ("default", "miss", "globex"): 1.0}
    assert values(metrics["blendcache_semantic_entries"]) == {
        ("default", "tiny-llama", "acme"): 1, ("default", "tiny-llama", "globex"): 1}


def test_each_app_has_its_own_registry(make_app):
    with TestClient(make_app()) as first, TestClient(make_app()) as second:
        first.post(URL, json=ask(EIFFEL))
        assert values(scrape(first)["blendcache_requests"]) == {
            ("default", "miss", "default"): 1.0}
        assert values(scrape(second)["blendcache_requests"]) == {}
    default_names = {f.name for f in prometheus_client.REGISTRY.collect()}
    assert not any(name.startswith("blendcache") for name in default_names)


def test_metrics_carry_no_created_timestamps(client):
    client.post(URL, json=ask(EIFFEL))
    text = client.get("/metrics").text
    assert "_created" not in text
    assert "# TYPE blendcache_requests_total counter" in text
