"""Samplers (SAMPLER registry for training, plus the inference sampler).

Every training pass draws from its own seeded stream (seed, epoch, pass) and is a sequence of
identity blocks of exactly K = ``num_instances`` indices.  With a world of W processes, each rank
takes every W-th block of the same pass (``rank``, ``rank + W``, ...); the pass is padded by
wrapping around to a multiple of W blocks so that all ranks see the same number of batches.
Rank and world size come from ``torch.distributed`` when it is initialised, or are given (tests
use a fake world size).
"""
import math
from typing import Iterator, List, Optional, Sequence, Tuple

import numpy as np
import torch.distributed as dist
from torch.utils.data import Sampler

from ..utils.registry import Registry
from .datasets.bases import Sample

SAMPLER_REGISTRY = Registry("SAMPLER")
SAMPLER_REGISTRY.__doc__ = """Training samplers: called as ``obj(samples, num_instances, seed)``
(optional ``rank``, ``world_size``); an iterable of dataset indices with ``set_epoch(epoch)``;
every ``iter()`` is a new pass."""


def dist_info(rank: Optional[int] = None, world_size: Optional[int] = None) -> Tuple[int, int]:
    """(rank, world size), from ``torch.distributed`` where not given."""
    initialised = dist.is_available() and dist.is_initialized()
    if world_size is None:
        world_size = dist.get_world_size() if initialised else 1
    if rank is None:
        rank = dist.get_rank() if initialised else 0
    if world_size < 1 or not 0 <= rank < world_size:
        raise ValueError(f"invalid rank {rank} for world size {world_size}")
    return int(rank), int(world_size)


class _SeededPassSampler(Sampler):
    def __init__(self, samples: Sequence[Sample], num_instances: int, seed: int,
                 rank: Optional[int] = None, world_size: Optional[int] = None) -> None:
        if num_instances < 1:
            raise ValueError(f"DATALOADER.NUM_INSTANCES must be >= 1, got {num_instances}")
        self.num_instances, self.seed = num_instances, seed
        self.rank, self.world_size = dist_info(rank, world_size)
        self.epoch, self._pass = 0, 0
        self.pids = np.array([s.pid for s in samples], dtype=np.int64)
        self.camids = np.array([s.camid for s in samples], dtype=np.int64)
        order = np.argsort(self.pids, kind="stable")
        order = order[self.pids[order] >= 0]
        uniq, starts = np.unique(self.pids[order], return_index=True)
        bounds = list(starts) + [len(order)]
        self.members = {int(p): order[bounds[i]:bounds[i + 1]] for i, p in enumerate(uniq)}

    def set_epoch(self, epoch: int) -> None:
        self.epoch, self._pass = epoch, 0

    def _rng(self) -> np.random.Generator:
        rng = np.random.default_rng([self.seed, self.epoch, self._pass])
        self._pass += 1
        return rng

    @property
    def _blocks_per_rank(self) -> int:
        return math.ceil(len(self.members) / self.world_size)

    def __len__(self) -> int:
        return self._blocks_per_rank * self.num_instances

    @staticmethod
    def _draw(rng, pool: np.ndarray, k: int) -> np.ndarray:
        return rng.choice(pool, size=k, replace=len(pool) < k)

    def _blocks(self, rng) -> List[List[int]]:
        raise NotImplementedError

    def _anchor_and_candidates(self, rng, pool: np.ndarray) -> Tuple[int, np.ndarray]:
        """A random anchor of an identity's members ``pool``, and the members to pair it with: those
        from other cameras than the anchor's, or (when there are none) all the other members."""
        anchor = int(rng.choice(pool))
        others = pool[pool != anchor]
        cross = others[self.camids[others] != self.camids[anchor]]
        return anchor, (cross if len(cross) else others)

    def __iter__(self) -> Iterator[int]:
        blocks = self._blocks(self._rng())
        if self.world_size > 1 and blocks:
            total = self._blocks_per_rank * self.world_size
            blocks = (blocks * math.ceil(total / len(blocks)))[:total]
            blocks = blocks[self.rank::self.world_size]
        return iter([i for b in blocks for i in b])


@SAMPLER_REGISTRY.register()
class RandomMultipleGallerySampler(_SeededPassSampler):
    """Per identity (random order): an anchor, then K−1 members preferring other cameras than the
    anchor's, drawn without replacement when at least
    K−1 candidates exist (AuxUSLReID needed K).  A singleton identity repeats its anchor, so every
    identity yields exactly K indices and batches stay P×K aligned."""

    def _blocks(self, rng) -> List[List[int]]:
        pids = list(self.members)
        out: List[List[int]] = []
        for p in rng.permutation(len(pids)):
            anchor, src = self._anchor_and_candidates(rng, self.members[pids[p]])
            if len(src):
                rest = [int(i) for i in self._draw(rng, src, self.num_instances - 1)]
            else:
                rest = [anchor] * (self.num_instances - 1)
            out.append([anchor] + rest)
        return out


@SAMPLER_REGISTRY.register()
class CrossCameraFirstSampler(_SeededPassSampler):
    """3C's P×K sampler: identities with a single member are skipped; after a
    random anchor, the K−1 others come from the candidates C (other-camera members, else the other
    members): K−1 distinct ones when |C| ≥ K−1, else all of C in random order topped up by
    t = K−1−|C| more draws from C (distinct when |C| ≥ t)."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.members = {p: m for p, m in self.members.items() if len(m) > 1}

    def _blocks(self, rng) -> List[List[int]]:
        pids, k = list(self.members), self.num_instances - 1
        out: List[List[int]] = []
        for p in rng.permutation(len(pids)):
            anchor, src = self._anchor_and_candidates(rng, self.members[pids[p]])
            if len(src) >= k:
                rest = rng.choice(src, size=k, replace=False)
            else:
                top = k - len(src)
                rest = np.concatenate([rng.permutation(src), rng.choice(src, size=top, replace=len(src) < top)])
            out.append([anchor] + [int(i) for i in rest])
        return out


@SAMPLER_REGISTRY.register()
class RandomIdentitySampler(_SeededPassSampler):
    """Standard P×K: each identity (random order) contributes K members (with replacement if fewer)."""

    def _blocks(self, rng) -> List[List[int]]:
        pids = list(self.members)
        return [[int(i) for i in self._draw(rng, self.members[pids[p]], self.num_instances)]
                for p in rng.permutation(len(pids))]


class InferenceSampler(Sampler):
    """Indices ``0..size-1`` in order; with W ranks, rank r gets one contiguous shard (shard sizes
    differ by at most one, nothing is repeated), so concatenating the ranks' outputs in rank
    order restores the full order."""

    def __init__(self, size: int, rank: Optional[int] = None, world_size: Optional[int] = None) -> None:
        self.size = int(size)
        self.rank, self.world_size = dist_info(rank, world_size)
        per, extra = divmod(self.size, self.world_size)
        self.begin = self.rank * per + min(self.rank, extra)
        self.end = self.begin + per + (1 if self.rank < extra else 0)

    def __iter__(self) -> Iterator[int]:
        return iter(range(self.begin, self.end))

    def __len__(self) -> int:
        return self.end - self.begin
