"""Blocked causal attention over a cache laid out by position (no model needed)."""

import pytest
import torch
import torch.nn.functional as F

from blendcache.recompute.layers import attend, attention_plan


def reference(q, k, v, pos, scale):
    """One masked call: every query sees the keys at positions <= its own."""
    visible = torch.arange(k.shape[1])[None, :] <= pos[:, None]
    mask = torch.zeros(visible.shape).masked_fill(~visible, float("-inf"))
    return F.scaled_dot_product_attention(q, k[None], v[None], attn_mask=mask, scale=scale,
                                          enable_gqa=True)


@pytest.mark.parametrize("total, n", [(300, 300), (300, 7), (300, 100), (1000, 333), (50, 49)])
def test_blocked_attention_equals_one_masked_call(total, n):
    gen = torch.Generator().manual_seed(total + n)
    pos = torch.randperm(total, generator=gen)[:n].sort().values
    q = torch.randn(1, 6, n, 16, generator=gen)
    k, v = torch.randn(2, total, 16, generator=gen), torch.randn(2, total, 16, generator=gen)
    plan = attention_plan(pos, total, q.dtype)
    assert (plan is None) == (n == total)
    got = attend(q, k, v, plan, 0.25)
    torch.testing.assert_close(got, reference(q, k, v, pos, 0.25), atol=1e-5, rtol=1e-5)


def test_plan_blocks_cover_the_queries_in_order_and_stop_at_their_last_key():
    pos = torch.tensor([3, 5, 40, 41, 42, 90, 91, 150])
    pos = torch.cat([pos, torch.arange(160, 260)])  # 108 queries: several blocks
    plan = attention_plan(pos, 300, torch.float32)
    assert len(plan) > 1 and plan[0].rows.start == 0 and plan[-1].rows.stop == len(pos)
    for a, b in zip(plan, plan[1:]):
        assert a.rows.stop == b.rows.start
    for block in plan:
        rows = pos[block.rows]
        assert block.keys == int(rows[-1]) + 1
        assert block.mask.shape == (len(rows), block.keys)
        visible = block.mask == 0
        assert torch.equal(visible.sum(1), rows + 1)  # each query sees exactly keys 0..its own


def test_no_queries_attend_to_nothing():
    q = torch.zeros(1, 4, 0, 8)
    plan = attention_plan(torch.zeros(0, dtype=torch.long), 10, q.dtype)
    assert plan == []
    assert attend(q, torch.zeros(2, 10, 8), torch.zeros(2, 10, 8), plan, 1.0).shape == q.shape
