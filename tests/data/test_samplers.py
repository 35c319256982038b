from collections import Counter

import numpy as np

from unreidusl.data import Sample
from unreidusl.data.samplers import CrossCameraFirstSampler, RandomIdentitySampler, RandomMultipleGallerySampler


def make_samples(rng, n_ids=10, per_id=8, n_cams=3):
    out = []
    for pid in range(n_ids):
        for k in range(per_id):
            out.append(Sample((f"{pid}_{k}.jpg",), pid, int(rng.integers(n_cams))))
    return out


def test_multiple_gallery_sampler_blocks_and_camera_preference():
    rng = np.random.default_rng(0)
    samples = make_samples(rng)
    s = RandomMultipleGallerySampler(samples, num_instances=4, seed=1)
    idx = list(s)
    assert len(idx) == len(s) == 40
    for b in range(10):
        block = idx[4 * b: 4 * b + 4]
        pids = {samples[i].pid for i in block}
        assert len(pids) == 1
        anchor_cam = samples[block[0]].camid
        others = [samples[i].camid for i in block[1:]]
        members = [x for x in samples if x.pid == samples[block[0]].pid]
        if any(m.camid != anchor_cam for m in members):
            assert all(c != anchor_cam for c in others)
    assert sorted({samples[i].pid for i in idx}) == list(range(10))


def test_cross_camera_first_sampler_takes_distinct_candidates_first_and_skips_singletons():
    cams = {0: [0], 1: [0, 1, 2, 3], 2: [0, 1], 3: [0, 0, 0], 4: [0, 0, 0, 1, 1, 1]}
    samples = [Sample((f"{p}_{k}.jpg",), p, c) for p, cs in cams.items() for k, c in enumerate(cs)]
    members = {p: [i for i, x in enumerate(samples) if x.pid == p] for p in cams}
    for seed in range(20):
        sampler = CrossCameraFirstSampler(samples, num_instances=4, seed=seed)
        idx = list(sampler)
        assert len(idx) == len(sampler) == 16                  # 4 identities x K; pid 0 is skipped
        blocks = {samples[b[0]].pid: b for b in (idx[i:i + 4] for i in range(0, 16, 4))}
        assert sorted(blocks) == [1, 2, 3, 4]
        assert sorted(blocks[1]) == members[1]                 # 3 other cameras: all distinct
        anchor, rest = blocks[2][0], blocks[2][1:]
        assert rest == [next(m for m in members[2] if m != anchor)] * 3   # one candidate, repeated
        anchor, rest = blocks[3][0], blocks[3][1:]             # no other camera: the other members,
        assert set(rest) == set(members[3]) - {anchor}         # each at least once, then a top-up
        anchor, rest = blocks[4][0], blocks[4][1:]
        assert len(set(rest)) == 3 and all(samples[i].camid != samples[anchor].camid for i in rest)


def test_sampler_passes_are_seeded_by_seed_epoch_and_pass():
    samples = make_samples(np.random.default_rng(1))
    a = RandomMultipleGallerySampler(samples, 4, seed=3)
    b = RandomMultipleGallerySampler(samples, 4, seed=3)
    first, second = list(a), list(a)
    assert first == list(b) and second == list(b) and first != second
    a.set_epoch(1)
    assert list(a) != first
    a.set_epoch(0)
    assert list(a) == first


def test_identity_sampler_counts():
    samples = make_samples(np.random.default_rng(2), n_ids=5, per_id=2)
    idx = list(RandomIdentitySampler(samples, num_instances=4, seed=0))
    counts = Counter(samples[i].pid for i in idx)
    assert set(counts.values()) == {4} and len(counts) == 5


def test_infinite_batch_sampler_spans_passes_with_full_batches():
    from itertools import islice

    from unreidusl.data.build import InfiniteBatchSampler

    samples = make_samples(np.random.default_rng(3), n_ids=3, per_id=4)
    sampler = RandomMultipleGallerySampler(samples, 4, seed=0)  # 12 indices per pass
    batches = list(islice(iter(InfiniteBatchSampler(sampler, 8)), 6))  # 48 indices = 4 passes
    assert all(len(b) == 8 for b in batches)
    flat = [i for b in batches for i in b]
    fresh = RandomMultipleGallerySampler(samples, 4, seed=0)
    assert flat == [i for _ in range(4) for i in fresh]
