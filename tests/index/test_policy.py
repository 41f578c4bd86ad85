import pytest

from blendcache.errors import InvalidRequestError
from blendcache.index.policy import CategoryPolicy, UsageRecord, eviction_order

from .conftest import make_category, make_config


def test_explicit_category_is_validated():
    policy = CategoryPolicy(make_config(make_category("default"), make_category("billing")))
    assert policy.choose("billing") == "billing"
    assert policy.choose(None) == "default"
    with pytest.raises(InvalidRequestError) as err:
        policy.choose("nope")
    assert err.value.status_code == 400


def test_policy_lookup_per_category():
    config = make_config(
        make_category("default", threshold=0.8),
        make_category("medical", threshold=0.95, ttl_s=60.0, max_entries=5, eviction="lfu",
                      context_sensitive=True),
    )
    medical = CategoryPolicy(config).get("medical")
    assert (medical.threshold, medical.ttl_s, medical.max_entries, medical.eviction,
            medical.context_sensitive) == (0.95, 60.0, 5, "lfu", True)


def test_automatic_category_by_nearest_prototype_with_floor(embedder):
    config = make_config(
        make_category("default"),
        make_category("weather", examples=("Will it rain tomorrow?", "What's the forecast?")),
        make_category("billing", examples=("Why is my invoice so high?", "How do I pay my bill?")),
        auto_category_floor=0.4,
    )
    policy = CategoryPolicy(config, embed=embedder.embed)
    assert policy.needs_embedding

    def choose(text):
        return policy.choose(None, embedder.embed_one(text))

    assert choose("Is it going to rain this weekend?") == "weather"
    assert choose("I was charged twice on my last bill") == "billing"
    assert choose("Who painted the Mona Lisa?") == "default"  # below the floor
    assert policy.choose("weather", None) == "weather"


def records():
    # id, created, hits, last_hit
    return [
        UsageRecord(1, 0.0, 5, 10.0),
        UsageRecord(2, 1.0, 0, None),  # last used at creation: 1.0
        UsageRecord(3, 2.0, 1, 4.0),
        UsageRecord(4, 3.0, 1, 4.0),
    ]


def test_lru_order_is_exact():
    assert eviction_order(records(), "lru") == [2, 3, 4, 1]


def test_lfu_order_is_exact():
    assert eviction_order(records(), "lfu") == [2, 3, 4, 1]
    more = records() + [UsageRecord(5, 9.0, 0, None)]
    assert eviction_order(more, "lfu") == [2, 5, 3, 4, 1]
    assert eviction_order(more, "lru") == [2, 3, 4, 5, 1]
