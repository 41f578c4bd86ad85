"""Chunk fusion on the real model: exactness at ratio 1, RoPE re-alignment, selection."""

import pytest
import torch
import torch.nn.functional as F

from blendcache.chunk_cache.layout import build_layout, format_document
from blendcache.kernels import dispatch
from blendcache.recompute.blend import BlendOptions, blend
from blendcache.recompute.generate import prefill
from blendcache.recompute.kv import KV
from blendcache.recompute.prefill import prefill_kv
from blendcache.recompute.select import Selection, schedule, select_chunk_tokens

DOCS = [
    "The Eiffel Tower was completed in 1889 for the World's Fair in Paris, France.",
    "Mount Fuji is the highest mountain in Japan, at 3,776 metres above sea level.",
    "The Great Barrier Reef lies off the coast of Queensland in north-east Australia.",
]
QUESTION = [{"role": "user", "content": "When was the Eiffel Tower completed?"}]


def kl(logits, reference):
    return F.kl_div(logits.log_softmax(-1), reference.log_softmax(-1), log_target=True,
                    reduction="sum").item()


@pytest.fixture(scope="module")
def case(engine):
    layout = build_layout(engine, QUESTION, [format_document(d) for d in DOCS])
    prefix = prefill_kv(engine, layout.prefix)
    chunks = [prefill_kv(engine, c, after=prefix) for c in layout.chunks]
    return layout, prefix, chunks, prefill(engine, layout.ids)


@pytest.mark.model
def test_layout_pieces_concatenate_to_the_chat_prompt(engine, case):
    layout = case[0]
    text = engine.tokenizer.decode(layout.ids)
    assert text.startswith("<|im_start|>system")
    assert text.index(DOCS[0]) < text.index(DOCS[2]) < text.index("When was the Eiffel")
    assert text.endswith("<|im_start|>assistant\n")
    assert layout.chunk_starts[0] == len(layout.prefix)


@pytest.mark.model
def test_ratio_one_reproduces_full_prefill(engine, case):
    layout, prefix, chunks, full = case
    out, stats = blend(engine, layout.ids, prefix, chunks, BlendOptions(recompute_ratio=1.0))
    torch.testing.assert_close(out.logits, full.logits, atol=2e-4, rtol=1e-4)
    assert stats.recomputed_tokens == stats.chunk_tokens
    for li in (0, 15, 29):  # every layer's cache equals the full prefill's
        torch.testing.assert_close(out.cache.layers[li].keys, full.cache.layers[li].keys,
                                   atol=2e-4, rtol=1e-4)


@pytest.mark.model
def test_ratio_one_reproduces_full_prefill_from_chunks_stored_after_a_background(engine, case):
    """Chunks prefilled after prefix + background sit at later positions and saw other text;
    re-rotated and fully recomputed they still give the full prefill."""
    layout, prefix, _, full = case
    background = tuple(engine.tokenizer.encode(format_document(DOCS[1] + " " + DOCS[2]),
                                               add_special_tokens=False))
    context = prefill_kv(engine, layout.prefix + background)
    chunks = [prefill_kv(engine, c, after=context) for c in layout.chunks]
    assert chunks[0].start == len(layout.prefix) + len(background)
    out, _ = blend(engine, layout.ids, prefix, chunks, BlendOptions(recompute_ratio=1.0))
    torch.testing.assert_close(out.logits, full.logits, atol=2e-4, rtol=1e-4)
    naive, _ = blend(engine, layout.ids, prefix, chunks, BlendOptions(recompute_ratio=0.0))
    assert kl(naive.logits, full.logits) > 1e-5  # the stored chunks are not the in-prompt ones


def _slice(full, start: int, end: int) -> KV:
    layers = full.cache.layers
    return KV(torch.stack([layer.keys[0, :, start:end] for layer in layers]),
              torch.stack([layer.values[0, :, start:end] for layer in layers]), start)


@pytest.mark.model
@pytest.mark.parametrize("ratio, layers", [(0.3, (2, 8)), (0.05, (1,)), (0.0, (2,))])
def test_exact_chunks_give_the_full_prefill_at_any_ratio(engine, case, ratio, layers):
    """Chunk KVs cut from the full prefill are already right, so recomputing any subset of
    their tokens must leave the prompt's logits and cache as they are: this checks the
    partial path (a subset attending in blocks over the fused cache, causal mask, positions,
    K/V written back), which ratio 1.0 never takes."""
    layout, _, _, full = case
    prefix = _slice(full, 0, len(layout.prefix))
    chunks = [_slice(full, s, s + len(c)) for s, c in zip(layout.chunk_starts, layout.chunks)]
    out, stats = blend(engine, layout.ids, prefix, chunks,
                       BlendOptions(recompute_ratio=ratio, check_layers=layers))
    assert 0 <= stats.recomputed_tokens < stats.chunk_tokens
    torch.testing.assert_close(out.logits, full.logits, atol=2e-4, rtol=1e-4)
    for li in (3, 29):
        torch.testing.assert_close(out.cache.layers[li].keys, full.cache.layers[li].keys,
                                   atol=2e-4, rtol=1e-4)


@pytest.mark.model
@pytest.mark.parametrize("method", ["deviation", "weighted"])
def test_ratio_zero_is_naive_reuse_and_selection_recovers_fidelity(engine, case, method):
    layout, prefix, chunks, full = case
    naive, st0 = blend(engine, layout.ids, prefix, chunks, BlendOptions(recompute_ratio=0.0))
    assert st0.recomputed_tokens == 0
    # the first chunk after the exact prefix is exact, so naive reuse is only slightly off here
    assert kl(naive.logits, full.logits) > 1e-5
    half, st5 = blend(engine, layout.ids, prefix, chunks,
                      BlendOptions(recompute_ratio=0.5, method=method, check_layers=(1,)))
    assert st5.recomputed_tokens == -(-st5.chunk_tokens // 2)
    assert kl(half.logits, full.logits) < kl(naive.logits, full.logits)


@pytest.mark.model
def test_rope_realignment_moves_a_chunk_exactly(engine, case):
    """A chunk stored as if prefilled 37 positions later is rotated back: KL ~ 0. Without the
    re-rotation the first token's distribution is clearly off."""
    layout, prefix, _, full = case
    inv_freq = engine.rope_inv_freq
    one = build_layout(engine, QUESTION, [format_document(DOCS[0])])
    exact = prefill_kv(engine, one.chunks[0], after=prefix)
    moved = KV(dispatch.rope_realign(exact.k, 37, inv_freq), exact.v, exact.start + 37)
    reference = prefill(engine, one.ids).logits
    out, _ = blend(engine, one.ids, prefix, [moved], BlendOptions(recompute_ratio=0.0))
    assert kl(out.logits, reference) < 1e-5
    wrong = KV(moved.k, moved.v, exact.start)  # claims the wrong stored position
    bad, _ = blend(engine, one.ids, prefix, [wrong], BlendOptions(recompute_ratio=0.0))
    assert kl(bad.logits, reference) > 100 * max(kl(out.logits, reference), 1e-7)


def test_selection_picks_planted_high_deviation_tokens():
    g = torch.Generator().manual_seed(0)
    k_old = torch.randn(3, 50, 16, generator=g)
    v_old = torch.randn(3, 50, 16, generator=g)
    k_new, v_new = k_old + 0.01 * torch.randn(3, 50, 16, generator=g), v_old.clone()
    planted = torch.tensor([4, 17, 31, 49])
    k_new[:, planted] += 5.0
    got = select_chunk_tokens(Selection(0.08, method="deviation"), k_new=k_new, k_old=k_old,
                              v_new=v_new, v_old=v_old, keep=4)
    assert got.tolist() == planted.tolist()
    # weighted: of the planted tokens, the two the question attends to most come first
    attention = torch.full((50,), 0.01)
    attention[torch.tensor([17, 49])] = 0.2
    got = select_chunk_tokens(Selection(0.04, method="weighted"), k_new=k_new, k_old=k_old,
                              v_new=v_new, v_old=v_old, keep=2, attention=attention)
    assert got.tolist() == [17, 49]
    rand = select_chunk_tokens(Selection(0.08, method="random", seed=1), k_new=k_new,
                               k_old=k_old, v_new=v_new, v_old=v_old, keep=4)
    assert len(rand) == 4 and rand.tolist() == sorted(rand.tolist())


def _cost(shares, layers, num_layers):
    """Token-layers recomputed from the first check on, as a share of the chunk tokens."""
    order = sorted(zip(layers, shares))
    ends = [layer for layer, _ in order[1:]] + [num_layers]
    return sum(share * (end - layer) for (layer, share), end in zip(order, ends))


@pytest.mark.parametrize("ratio", [0.05, 0.15, 0.5, 0.9])
@pytest.mark.parametrize("layers", [(2,), (2, 8), (1, 4, 16), (8, 2)])
def test_gradual_filtering_schedule_costs_what_one_check_costs(ratio, layers):
    shares = schedule(ratio, layers, 30)
    assert _cost(shares, layers, 30) == pytest.approx(ratio * (30 - min(layers)))
    by_layer = [share for _, share in sorted(zip(layers, shares))]
    assert all(0 < s <= 1 for s in by_layer)
    assert by_layer == sorted(by_layer, reverse=True)  # narrows from check to check
    if len(layers) > 1 and by_layer[0] < 1:
        assert by_layer[1] == pytest.approx(by_layer[0] / 2)


def test_gradual_filtering_schedule_examples():
    assert schedule(0.15, (2,), 30) == [0.15]
    assert schedule(0.15, (2, 8), 30) == pytest.approx([4.2 / 17, 2.1 / 17])
    assert schedule(0.9, (2, 8), 30) == pytest.approx([1.0, (0.9 * 28 - 6) / 22])
    assert schedule(1.0, (2, 8), 30) == pytest.approx([1.0, 1.0])
    with pytest.raises(ValueError):
        schedule(0.15, (2, 30), 30)


@pytest.mark.model
def test_exact_prefix_reuse_matches_full_prefill(engine, case):
    layout, prefix, _, full = case
    out = prefill(engine, layout.ids, after=prefix)
    torch.testing.assert_close(out.logits, full.logits, atol=2e-4, rtol=1e-4)
    assert out.prompt_tokens == len(layout.ids)
