from blendcache.chunk_cache.keys import chunk_key, prefix_key


def test_key_is_stable_and_hex():
    key = chunk_key("fp", [1, 2, 3], prefix_ids=[9])
    assert key == chunk_key("fp", (1, 2, 3), prefix_ids=(9,))
    assert len(key) == 64 and int(key, 16) >= 0


def test_key_changes_with_each_input():
    base = chunk_key("fp", [1, 2, 3], prefix_ids=[9])
    assert chunk_key("fp2", [1, 2, 3], prefix_ids=[9]) != base
    assert chunk_key("fp", [1, 2, 4], prefix_ids=[9]) != base
    assert chunk_key("fp", [3, 2, 1], prefix_ids=[9]) != base
    assert chunk_key("fp", [1, 2, 3], prefix_ids=[8]) != base
    assert chunk_key("fp", [1, 2, 3]) != base


def test_no_ambiguity_between_prefix_and_chunk_boundaries():
    assert chunk_key("fp", [2, 3], prefix_ids=[1]) != chunk_key("fp", [3], prefix_ids=[1, 2])
    assert chunk_key("fp", [256]) != chunk_key("fp", [1, 0])


def test_prefix_key_is_a_chunk_after_nothing():
    assert prefix_key("fp", [5, 6]) == chunk_key("fp", [5, 6])
