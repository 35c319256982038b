"""PK / camera-aware / inference samplers and their distributed (rank-sharded) variants."""
from collections import Counter
from itertools import islice

import numpy as np
import pytest

from unreidusl.data import InferenceSampler, Sample
from unreidusl.data.build import InfiniteBatchSampler, SeededBatches
from unreidusl.data.samplers import RandomIdentitySampler, RandomMultipleGallerySampler, dist_info


def samples_with(sizes, n_cams=3, seed=0):
    rng = np.random.default_rng(seed)
    out = []
    for pid, n in enumerate(sizes):
        out += [Sample((f"{pid}_{k}.jpg",), pid, int(rng.integers(n_cams))) for k in range(n)]
    return out


def blocks(idx, k):
    return [idx[i:i + k] for i in range(0, len(idx), k)]


@pytest.mark.parametrize("cls", [RandomMultipleGallerySampler, RandomIdentitySampler])
def test_every_identity_yields_one_block_of_k(cls):
    samples = samples_with([1, 2, 3, 5, 9, 4])  # a singleton, fewer than K, more than K
    s = cls(samples, num_instances=4, seed=0)
    idx = list(s)
    assert len(idx) == len(s) == 6 * 4
    for b in blocks(idx, 4):
        assert len({samples[i].pid for i in b}) == 1
    assert Counter(samples[i].pid for i in idx) == {p: 4 for p in range(6)}


def test_multiple_gallery_without_replacement_when_k_minus_1_candidates():
    # anchor + exactly 3 other-camera members: all three are used, none twice
    samples = [Sample(("a",), 0, 0), Sample(("b",), 0, 1), Sample(("c",), 0, 2), Sample(("d",), 0, 1)]
    for seed in range(20):
        idx = list(RandomMultipleGallerySampler(samples, 4, seed=seed))
        if samples[idx[0]].camid == 0:
            assert sorted(idx) == [0, 1, 2, 3]
    single = [Sample(("x",), 5, 0)]
    assert list(RandomMultipleGallerySampler(single, 4, seed=0)) == [0, 0, 0, 0]


def test_negative_pids_are_ignored():
    samples = samples_with([3, 3]) + [Sample(("noise",), -1, 0)]
    assert len(samples) - 1 not in set(RandomIdentitySampler(samples, 2, seed=0))


@pytest.mark.parametrize("cls", [RandomMultipleGallerySampler, RandomIdentitySampler])
@pytest.mark.parametrize("world", [2, 3])
def test_distributed_variant_shards_blocks_by_rank(cls, world):
    samples = samples_with([4, 6, 2, 5, 3, 7, 4])  # 7 identities: not divisible by 2 or 3
    full = blocks(list(cls(samples, 4, seed=9)), 4)
    ranks = [cls(samples, 4, seed=9, rank=r, world_size=world) for r in range(world)]
    per_rank = [blocks(list(s), 4) for s in ranks]
    assert len({len(s) for s in ranks}) == 1 and len(ranks[0]) == 4 * -(-7 // world)
    assert all(len(p) == len(ranks[0]) // 4 for p in per_rank)
    for p in per_rank:
        assert all(len({samples[i].pid for i in b}) == 1 for b in p)  # P x K alignment per rank
    # interleaving the ranks restores the full pass (padded by wrapping around)
    merged = [per_rank[r][j] for j in range(len(per_rank[0])) for r in range(world)]
    assert merged[:len(full)] == full
    assert merged[len(full):] == full[:len(merged) - len(full)]
    # passes and epochs stay in lockstep across ranks
    for s in ranks:
        s.set_epoch(3)
    again = [blocks(list(s), 4) for s in ranks]
    ref = cls(samples, 4, seed=9)
    ref.set_epoch(3)
    assert [again[r][j] for j in range(len(again[0])) for r in range(world)][:7] == blocks(list(ref), 4)


def test_inference_sampler_contiguous_shards():
    for n, world in ((10, 3), (2, 4), (0, 2), (7, 1)):
        shards = [list(InferenceSampler(n, rank=r, world_size=world)) for r in range(world)]
        assert sum(shards, []) == list(range(n))
        assert max(map(len, shards)) - min(map(len, shards)) <= 1
    with pytest.raises(ValueError):
        InferenceSampler(5, rank=2, world_size=2)
    assert dist_info() == (0, 1)


def test_seeded_batches_depend_only_on_key_and_position():
    samples = samples_with([4, 4, 4])
    make = lambda key: list(islice(iter(SeededBatches(  # noqa: E731
        InfiniteBatchSampler(RandomIdentitySampler(samples, 4, seed=1), 6), key)), 3))
    a, b, c = make((1, 0, 0)), make((1, 0, 0)), make((1, 1, 0))
    assert a == b and [i for i, _ in sum(a, [])] == [i for i, _ in sum(c, [])]
    assert [t for _, t in sum(a, [])] != [t for _, t in sum(c, [])]
    seeds = [t for _, t in sum(a, [])]
    assert len(set(seeds)) == len(seeds)
