"""The served-workload benchmark: its request stream, and one short run over HTTP."""

import pytest

from blendcache.benchmarks import bench_serve

POOL = [
    {"question": "Who built the tower?", "answers": ["Gustave Eiffel"],
     "ctxs": [{"title": "Tower", "text": "The tower was built by Gustave Eiffel's company."},
              {"title": "Fuji", "text": "Mount Fuji is a volcano in Japan."},
              {"title": "Owls", "text": "Owls hunt at night."}]},
    {"question": "Where is Mount Fuji?", "answers": ["Japan"],
     "ctxs": [{"title": "Fuji", "text": "Mount Fuji is a volcano in Japan."},
              {"text": "Lakes are bodies of water surrounded by land."}]},
]


def test_stream_draws_popular_samples_often_and_reorders_only_repeats():
    pool = [{"question": f"q{i}", "ctxs": [{"text": f"doc {i} {j}"} for j in range(5)]}
            for i in range(10)]
    stream = bench_serve.make_stream(pool, 400, zipf=1.0, reorder=0.5, seed=3)
    assert stream == bench_serve.make_stream(pool, 400, zipf=1.0, reorder=0.5, seed=3)
    assert stream != bench_serve.make_stream(pool, 400, zipf=1.0, reorder=0.5, seed=4)
    counts = sorted((sum(r.sample == i for r in stream) for i in range(10)), reverse=True)
    assert counts[0] > 3 * counts[-1]  # Zipf: the most popular far above the least
    seen = set()
    for r in stream:
        given = tuple(bench_serve.documents(pool[r.sample]))
        assert sorted(r.documents) == sorted(given) and r.question == f"q{r.sample}"
        if r.sample not in seen:
            assert not r.reordered and r.documents == given
        seen.add(r.sample)
    repeats = len(stream) - len(seen)
    assert 0.3 * repeats < sum(r.reordered for r in stream) < 0.7 * repeats
    uniform = bench_serve.make_stream(pool, 400, zipf=0.0, reorder=0.0, seed=3)
    assert not any(r.reordered for r in uniform)
    assert min(sum(r.sample == i for r in uniform) for i in range(10)) > 20


def test_documents_carry_their_title():
    assert bench_serve.documents(POOL[1]) == [
        "Fuji\nMount Fuji is a volcano in Japan.", "Lakes are bodies of water surrounded by land."]


@pytest.mark.model
def test_serve_bench_runs_every_system_over_http(engine, embedder, make_settings):
    result = bench_serve.run_serve_bench(make_settings(), engine, embedder, POOL, requests=5,
                                         zipf=0.0, reorder=0.5, seed=1, max_tokens=4,
                                         log=lambda _: None)
    assert list(result["systems"]) == list(bench_serve.SYSTEMS)
    stream = bench_serve.make_stream(POOL, 5, zipf=0.0, reorder=0.5, seed=1)
    assert result["requests"] == 5 and result["distinct"] == len({r.sample for r in stream})
    systems = result["systems"]
    for name, m in systems.items():
        assert sum(m["outcomes"].values()) == 5
        assert m["ttft_ms_p50"] > 0 and m["ttft_ms_p90"] >= m["ttft_ms_p50"]
        assert m["latency_ms_p50"] >= m["ttft_ms_p50"] * 0.5
        assert 0.0 <= m["agreement"] <= 1.0 and m["wall_s"] > 0
    base = systems["model_only"]
    assert base["outcomes"] == {"miss": 5} and base["agreement"] == 1.0
    assert base["chunks_reused_share"] == 0.0 and base["ttft_speedup"] == 1.0
    # the first request finds nothing stored: a full prefill, its chunks stored after the
    # answer; the other sample shares the Fuji passage, so less than max_missing_share of it
    # is new when it first comes: fused, like every repeat
    assert result["distinct"] == 2
    chunk = systems["chunk_cache"]
    assert chunk["outcomes"] == {"miss_deferred": 1, "blend": 4}
    assert 0.5 < chunk["chunks_reused_share"] < 1.0
    # stored ahead: every chunk of every request is found
    warmed = systems["blendcache_warmed"]
    assert "miss_deferred" not in warmed["outcomes"] and "miss" not in warmed["outcomes"]
    assert warmed["chunks_reused_share"] == 1.0
    for name, m in systems.items():
        assert set(m["ttft_ms_p50_by_outcome"]) == set(m["outcomes"])
        assert set(m["prefill_ms_p50_by_outcome"]) == set(m["outcomes"])
    assert sum(systems["model_only"]["chunk_tier_hits"].values()) == 0
    assert sum(chunk["chunk_tier_hits"].values()) > 0
    assert "agree:" in bench_serve.format_table(result)
