"""Torch datasets over ``Sample`` lists and the batch collator.

* :class:`SampleDataset`: item = one sample.  Without ``seq_len`` (image datasets) the sample's
  first frame → ``images [3, H, W]``; with ``seq_len`` a clip of ``seq_len`` frames drawn by
  ``clips.clip_indices`` → ``images [T, 3, H, W]``.  With ``draws = R`` the dataset has
  ``N·R`` items, item ``k`` being draw ``k % R`` of sample ``k // R``.  With ``random_clips``
  the frame choices come from the worker's torch RNG (seeded by the loader), or, with ``seed``
  set, from a generator seeded by ``(seed, epoch, k)`` so that they do not depend on workers or
  iteration order; otherwise the clip is the deterministic (centred / evenly spaced) one.
  Training batch samplers pass ``(index, item_seed)`` keys: clip choice and augmentation then
  depend only on the item seed, i.e. on (SEED, epoch, position in the epoch's stream), not on
  the number of workers or on the global RNG state.
* :class:`FrameDataset`: item = one frame of the flattened list of all frames of all samples
  (test-time "all frames" extraction); ``segments`` tells which sample a frame belongs to.
"""
import logging
from typing import List, Optional, Sequence

import numpy as np
import torch
from torch.utils.data import Dataset

from .clips import clip_indices
from .datasets.bases import Sample
from .transforms import ClipTransform, CorruptImageError, read_image

__all__ = ["SampleDataset", "FrameDataset", "collate_samples", "CorruptImageError", "read_image"]

logger = logging.getLogger(__name__)


class SampleDataset(Dataset):
    def __init__(self, samples: Sequence[Sample], transform: ClipTransform, skip_corrupt: bool = False,
                 seq_len: Optional[int] = None, sample_mode: str = "random", draws: int = 1,
                 seed: Optional[int] = None, epoch: int = 0, random_clips: bool = False) -> None:
        self.samples = list(samples)
        self.random_clips = random_clips
        self.transform = transform
        self.skip_corrupt = skip_corrupt
        self.seq_len, self.sample_mode = seq_len, sample_mode
        self.draws, self.seed, self.epoch = int(draws), seed, epoch
        if self.draws < 1:
            raise ValueError(f"draws must be >= 1, got {draws}")

    def set_epoch(self, epoch: int) -> None:
        """New frame choices for seeded datasets (rebuild worker processes to take effect)."""
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.samples) * self.draws

    def _rng(self, k: int) -> np.random.Generator:
        if self.seed is not None:
            return np.random.default_rng([int(self.seed), int(self.epoch), int(k)])
        return np.random.default_rng(int(torch.randint(0, 2**62, (1,)).item()))

    def _frames(self, s: Sample, k: int) -> List[str]:
        if self.seq_len is None:
            return [s.frames[0]]
        rng = self._rng(k) if self.random_clips else None
        idx = clip_indices(len(s.frames), self.seq_len, self.sample_mode, rng)
        return [s.frames[i] for i in idx]

    def _load(self, paths: List[str]) -> Optional[torch.Tensor]:
        try:
            return self.transform.load(paths)
        except CorruptImageError as e:
            if not self.skip_corrupt:
                raise
            logger.warning("Skipping: %s", e)
        good = []
        for p in dict.fromkeys(paths):  # per-frame retry only on this rare error path
            try:
                self.transform.load([p])
                good.append(p)
            except CorruptImageError:
                pass
        if not good:
            return None
        keep = [p if p in good else good[i % len(good)] for i, p in enumerate(paths)]
        return self.transform.load(keep)

    def __getitem__(self, key) -> Optional[dict]:
        """``key``: an item index, or ``(index, item_seed)`` from a seeded batch sampler, in
        which case the clip choice and the augmentation depend only on ``item_seed``."""
        if isinstance(key, tuple):
            k, item_seed = key
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(int(item_seed))
                return self._item(int(k))
        return self._item(int(key))

    def _item(self, k: int) -> Optional[dict]:
        s = self.samples[k // self.draws]
        clip = self._load(self._frames(s, k))
        if clip is None:
            return None
        images = self.transform(clip)
        if self.seq_len is None:
            images = images[0]
        return {"images": images, "targets": s.pid, "camids": s.camid, "index": k}


class FrameDataset(Dataset):
    """Every frame of every sample, in sample order; item → one frame [3, H, W] + its sample."""

    def __init__(self, samples: Sequence[Sample], transform: ClipTransform,
                 skip_corrupt: bool = False) -> None:
        self.samples = list(samples)
        self.transform = transform
        self.skip_corrupt = skip_corrupt
        lengths = np.fromiter((len(s.frames) for s in self.samples), dtype=np.int64,
                              count=len(self.samples))
        self.num_samples = len(self.samples)
        self.owner = np.repeat(np.arange(self.num_samples, dtype=np.int64), lengths)
        self.offset = np.concatenate([[0], np.cumsum(lengths)[:-1]]) if len(lengths) else lengths

    def __len__(self) -> int:
        return len(self.owner)

    def __getitem__(self, j: int) -> Optional[dict]:
        i = int(self.owner[j])
        s = self.samples[i]
        path = s.frames[j - int(self.offset[i])]
        try:
            clip = self.transform.load([path])
        except CorruptImageError as e:
            if not self.skip_corrupt:
                raise
            logger.warning("Skipping: %s", e)
            return None
        return {"images": self.transform(clip)[0], "targets": s.pid, "camids": s.camid,
                "index": i, "segments": i}


def collate_samples(items: List[Optional[dict]]) -> dict:
    items = [it for it in items if it is not None]
    if not items:
        return {"images": torch.empty(0), "targets": torch.empty(0, dtype=torch.long),
                "camids": torch.empty(0, dtype=torch.long), "index": torch.empty(0, dtype=torch.long)}
    out = {
        "images": torch.stack([it["images"] for it in items]),
        "targets": torch.tensor([it["targets"] for it in items], dtype=torch.long),
        "camids": torch.tensor([it["camids"] for it in items], dtype=torch.long),
        "index": torch.tensor([it["index"] for it in items], dtype=torch.long),
    }
    if "segments" in items[0]:
        out["segments"] = torch.tensor([it["segments"] for it in items], dtype=torch.long)
    return out
