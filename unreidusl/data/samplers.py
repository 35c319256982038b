"""Training samplers (SAMPLER registry). Each pass draws from its own seeded stream (seed, epoch, pass)."""
from collections import defaultdict
from typing import Iterator, List, Sequence

import numpy as np
from torch.utils.data import Sampler

from ..utils.registry import Registry
from .datasets.bases import Sample

SAMPLER_REGISTRY = Registry("SAMPLER")
SAMPLER_REGISTRY.__doc__ = """Training samplers: called as ``obj(samples, num_instances, seed)``; an
iterable of dataset indices with ``set_epoch(epoch)``; every ``iter()`` is a new pass."""


class _SeededPassSampler(Sampler):
    def __init__(self, samples: Sequence[Sample], num_instances: int, seed: int) -> None:
        if num_instances < 1:
            raise ValueError(f"DATALOADER.NUM_INSTANCES must be >= 1, got {num_instances}")
        self.num_instances, self.seed = num_instances, seed
        self.epoch, self._pass = 0, 0
        self.pids = np.array([s.pid for s in samples], dtype=np.int64)
        self.camids = np.array([s.camid for s in samples], dtype=np.int64)
        members = defaultdict(list)
        for i, pid in enumerate(self.pids):
            if pid >= 0:
                members[int(pid)].append(i)
        self.members = {p: np.array(v, dtype=np.int64) for p, v in sorted(members.items())}

    def set_epoch(self, epoch: int) -> None:
        self.epoch, self._pass = epoch, 0

    def _rng(self) -> np.random.Generator:
        rng = np.random.default_rng([self.seed, self.epoch, self._pass])
        self._pass += 1
        return rng

    def __len__(self) -> int:
        return len(self.members) * self.num_instances

    @staticmethod
    def _draw(rng, pool: np.ndarray, k: int) -> np.ndarray:
        return rng.choice(pool, size=k, replace=len(pool) < k)


@SAMPLER_REGISTRY.register()
class RandomMultipleGallerySampler(_SeededPassSampler):
    """Per identity (random order): an anchor, then K−1 members preferring other cameras than the
    anchor's (spec cluster-contrast-ise-ncplr.md §1.3), drawn without replacement when possible."""

    def __iter__(self) -> Iterator[int]:
        rng = self._rng()
        pids = list(self.members)
        out: List[int] = []
        for p in rng.permutation(len(pids)):
            pool = self.members[pids[p]]
            anchor = int(rng.choice(pool))
            others = pool[pool != anchor]
            cross = others[self.camids[others] != self.camids[anchor]]
            src = cross if len(cross) else others
            out.append(anchor)
            if len(src):
                out.extend(int(i) for i in self._draw(rng, src, self.num_instances - 1))
        return iter(out)


@SAMPLER_REGISTRY.register()
class RandomIdentitySampler(_SeededPassSampler):
    """Standard P×K: each identity (random order) contributes K members (with replacement if fewer)."""

    def __iter__(self) -> Iterator[int]:
        rng = self._rng()
        pids = list(self.members)
        out: List[int] = []
        for p in rng.permutation(len(pids)):
            out.extend(int(i) for i in self._draw(rng, self.members[pids[p]], self.num_instances))
        return iter(out)
