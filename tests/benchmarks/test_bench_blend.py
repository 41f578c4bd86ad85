"""The chunk-fusion benchmark end to end on two short samples (shape of its JSON, sanity)."""

import json

import pytest

from blendcache.benchmarks import bench_blend
from blendcache.benchmarks._common import best_f1, normalize_answer

pytestmark = pytest.mark.model

SAMPLES = [
    {"question": "Who built the tower?", "answers": ["Gustave Eiffel"],
     "ctxs": [{"title": "Tower", "text": "The tower was built by Gustave Eiffel's company."},
              {"title": "Fuji", "text": "Mount Fuji is a volcano in Japan."}]},
    {"question": "Where is Mount Fuji?", "answers": ["Japan"],
     "ctxs": [{"title": "Fuji", "text": "Mount Fuji is a volcano in Japan."},
              {"title": "Tower", "text": "The tower was built by Gustave Eiffel's company."}]},
]


def test_squad_f1():
    assert normalize_answer("The  Eiffel, Tower!") == "eiffel tower"
    assert best_f1("in Japan", ["Japan", "Tokyo"]) == pytest.approx(2 / 3)
    assert best_f1("nothing", ["Japan"]) == 0.0


def test_bench_runs_every_method(engine, tmp_path):
    data = tmp_path / "rag.jsonl"
    data.write_text("\n".join(json.dumps(s) for s in SAMPLES))
    samples = bench_blend.load_samples(data)
    background = tmp_path / "background.txt"  # a short one keeps the test quick
    background.write_text("Lakes\nA lake is a body of water surrounded by land.\n\n"
                          "Owls\nOwls hunt at night.\n")
    result = bench_blend.run_blend_bench(engine, samples, ratios=[0.15], max_new_tokens=4,
                                         also_check_layers=(2, 8), background=str(background),
                                         compare_background=True, noise_floor=True,
                                         cold_shares=(0.5, 1.0),
                                         disk_dir=str(tmp_path / "kv"),
                                         log=lambda _: None)
    assert set(result) == {"device", "model", "samples", "prompt_tokens_p50", "methods",
                           "answer_agreement", "first_token_agreement"}
    names = ["full_prefill", "prefix_cache", "full_reuse", "cacheblend_r0.15",
             "cacheblend_r0.15_L2-8", "random_r0.15", "full_prefill_kv_bf16",
             "full_prefill_kv_int8", "cacheblend_r0.15_cold0.5", "cacheblend_r0.15_cold",
             "full_reuse_nobg",
             "cacheblend_r0.15_nobg", "cacheblend_r0.15_disk", "cacheblend_r0.15_int8"]
    assert list(result["methods"]) == names
    assert list(result["answer_agreement"]) == names
    assert list(result["first_token_agreement"]) == names
    assert result["first_token_agreement"]["full_prefill"] == 1.0
    assert result["first_token_agreement"]["prefix_cache"] == 1.0
    # the looser agreement forgives more, never less
    for name in names:
        assert result["answer_agreement"][name] >= result["methods"][name]["agreement"]
    for name, m in result["methods"].items():
        assert set(m) == {"ttft_ms_p50", "ttft_ms_p90", "speedup", "f1", "agreement",
                          "kl_first_token"}
        assert m["ttft_ms_p50"] > 0 and m["kl_first_token"] >= 0
    full = result["methods"]["full_prefill"]
    assert full["agreement"] == 1.0 and full["kl_first_token"] == 0.0
    assert result["methods"]["prefix_cache"]["kl_first_token"] < 1e-6
    # rounding the exact KV to bf16 perturbs the first token far less than naive reuse does
    assert (result["methods"]["full_prefill_kv_bf16"]["kl_first_token"]
            < result["methods"]["full_reuse"]["kl_first_token"])
    # a cold cache prefills the same chunk KVs the warm methods read: the same fusion
    methods = result["methods"]
    for cold in ("cacheblend_r0.15_cold", "cacheblend_r0.15_cold0.5"):
        assert methods[cold]["kl_first_token"] == pytest.approx(
            methods["cacheblend_r0.15"]["kl_first_token"], abs=1e-4)
    assert result["samples"] == 2
    assert result["answer_agreement"]["full_prefill"] == 1.0
    assert "agree@line" in bench_blend.format_table(result)
    assert "tok1" in bench_blend.format_table(result)


def test_cold_chunks_are_the_share_asked_for_spread_over_the_prompt():
    assert bench_blend.cold_chunks(10, 1.0) == set(range(10))
    assert bench_blend.cold_chunks(10, 0.0) == set()
    assert bench_blend.cold_chunks(10, 0.5) == {1, 3, 5, 7, 9}
    assert len(bench_blend.cold_chunks(10, 0.25)) == 2
    assert len(bench_blend.cold_chunks(10, 0.75)) == 7
    assert len(bench_blend.cold_chunks(2, 0.5)) == 1


def test_distractors_come_from_other_questions_and_are_seeded():
    rows = [{"question": f"q{i}", "answers": [str(i)],
             "ctxs": [{"title": f"t{i}", "text": f"passage {i}", "isgold": True}]}
            for i in range(12)]
    picked = rows[3:6]
    out = bench_blend.add_distractors(rows, picked, 4, seed=7)
    assert out == bench_blend.add_distractors(rows, picked, 4, seed=7)
    assert out != bench_blend.add_distractors(rows, picked, 4, seed=8)
    for row, sample in zip(picked, out, strict=True):
        texts = [c["text"] for c in sample["ctxs"]]
        assert len(texts) == 5 == len(set(texts)) and texts.count(row["ctxs"][0]["text"]) == 1
        assert sample["question"] == row["question"]
    positions = {[c["text"] for c in s["ctxs"]].index(r["ctxs"][0]["text"])
                 for r, s in zip(rows, bench_blend.add_distractors(rows, rows, 4, seed=0))}
    assert len(positions) > 1  # the gold passage is not always in the same place
    assert rows[3]["ctxs"] == [{"title": "t3", "text": "passage 3", "isgold": True}]  # unchanged
