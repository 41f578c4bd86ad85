import pytest
import torch

from blendcache.errors import CorruptBlobError
from blendcache.recompute.kv import KV
from blendcache.storage import kvcodec
from blendcache.storage.blobs.disk import DiskTier
from blendcache.storage.blobs.memory import MemoryTier


def make_kv(tokens=4, *, seed=0, start=3, layers=2, heads=2, dim=8, dtype=torch.float32) -> KV:
    g = torch.Generator().manual_seed(seed)
    shape = (layers, heads, tokens, dim)
    return KV(torch.randn(shape, generator=g).to(dtype), torch.randn(shape, generator=g).to(dtype),
              start)


def test_codec_round_trip_exact():
    kv = make_kv()
    back = kvcodec.decode(kvcodec.encode(kv))
    assert back.start == 3
    assert torch.equal(back.k, kv.k) and torch.equal(back.v, kv.v)


def test_codec_int8_is_smaller_and_close():
    kv = make_kv(tokens=64, dim=64)
    plain, packed = kvcodec.encode(kv), kvcodec.encode(kv, "int8")
    assert len(packed) < len(plain) / 3
    back = kvcodec.decode(packed)
    scale = kv.k.abs().amax(dim=-1, keepdim=True) / 127
    assert torch.all((back.k - kv.k).abs() <= scale / 2 + 1e-6)


def test_codec_detects_a_flipped_byte():
    blob = bytearray(kvcodec.encode(make_kv()))
    blob[-5] ^= 0xFF
    with pytest.raises(CorruptBlobError, match="checksum"):
        kvcodec.decode(bytes(blob))


def test_memory_tier_evicts_least_recently_used_first():
    one = make_kv().nbytes
    tier = MemoryTier(max_bytes=3 * one)
    tier.put_many({"a": make_kv(), "b": make_kv(), "c": make_kv()})
    assert tier.get_many(["a"]).keys() == {"a"}  # a becomes most recent
    evicted = tier.put_many({"d": make_kv()})
    assert evicted == ["b"]
    assert tier.keys() == ["c", "a", "d"]
    assert tier.put_many({"e": make_kv(), "f": make_kv()}) == ["c", "a"]
    assert tier.stats.bytes == 3 * one
    assert tier.stats.evictions == 3


def test_memory_tier_counts_hits_and_misses():
    tier = MemoryTier(max_bytes=1 << 20)
    tier.put_many({"a": make_kv()})
    assert set(tier.get_many(["a", "zz"])) == {"a"}
    assert (tier.stats.hits, tier.stats.misses) == (1, 1)


def test_disk_tier_round_trip_and_atomic_files(tmp_path):
    tier = DiskTier(tmp_path, max_bytes=1 << 30)
    kv = make_kv(seed=1)
    tier.put_many({"ab12": kv})
    assert tier.path("ab12").is_file()
    assert not list(tmp_path.rglob("*.tmp"))
    got = tier.get_many(["ab12"])["ab12"]
    assert torch.equal(got.k, kv.k) and got.start == kv.start


def test_disk_tier_drops_a_corrupt_blob_instead_of_serving_it(tmp_path):
    tier = DiskTier(tmp_path, max_bytes=1 << 30)
    tier.put_many({"ab12": make_kv()})
    path = tier.path("ab12")
    data = bytearray(path.read_bytes())
    data[-3] ^= 0x01
    path.write_bytes(bytes(data))
    assert tier.get_many(["ab12"]) == {}
    assert tier.stats.corrupt == 1
    assert not path.exists() and "ab12" not in tier


def test_disk_tier_evicts_oldest_and_survives_restart(tmp_path):
    one = len(kvcodec.encode(make_kv()))
    tier = DiskTier(tmp_path, max_bytes=2 * one)
    tier.put_many({"k1": make_kv(seed=1)})
    tier.put_many({"k2": make_kv(seed=2)})
    tier.get_many(["k1"])
    assert tier.put_many({"k3": make_kv(seed=3)}) == ["k2"]
    again = DiskTier(tmp_path, max_bytes=2 * one)
    assert set(again.keys()) == {"k1", "k3"}
    assert again.stats.bytes == 2 * one
    assert torch.equal(again.get_many(["k3"])["k3"].k, make_kv(seed=3).k)


def test_disk_tier_finds_files_another_process_wrote(tmp_path):
    one = len(kvcodec.encode(make_kv()))
    server = DiskTier(tmp_path, max_bytes=10 * one)  # indexed an empty directory at start
    warmer = DiskTier(tmp_path, max_bytes=10 * one)
    warmer.put_many({"k1": make_kv(seed=1), "k2": make_kv(seed=2)})
    assert "k1" in server and "k9" not in server
    assert server.stats.entries == 1 and server.stats.bytes == one
    assert torch.equal(server.get_many(["k2"])["k2"].k, make_kv(seed=2).k)
    assert set(server.keys()) == {"k1", "k2"} and server.stats.bytes == 2 * one
    server.delete_many(["k1"])
    assert "k1" not in server and not server.path("k1").exists()
    assert warmer.get_many(["k1"]) == {} and "k1" not in warmer.keys()  # its file is gone
    assert warmer.stats.bytes == one
