"""Builders that turn ``cfg`` into datasets and data loaders.

Batches are dicts ``images`` (``[B, 3, H, W]`` for one-frame samples, ``[B, T, 3, H, W]`` for
clips), ``targets``, ``camids`` and ``index``.  A list of samples that all have one frame is
loaded as images (no clip overhead); any longer sample switches the loader to clips.

* ``build_train_loader``: endless P×K batches of clips of ``DATALOADER.TRAIN_SEQ_LEN`` frames
  (``TRAIN_SAMPLE``), train transforms; randomness seeded by (SEED, epoch).
* ``build_inference_loader``: samples in order, test transforms.  For multi-frame samples the
  default ("auto") is the *frames* mode: a loader over every frame of every sample in order,
  ``batch_size`` frames per batch, with ``segments`` (the sample of each frame); pass it to
  ``evaluation.extract_features``, which averages the pooled frame features per sample (bounded
  memory) and embeds them, returning one feature per sample.
* ``build_cluster_loader``: clips of ``CLUSTER_SEQ_LEN`` frames, ``CLUSTER_SAMPLE_MULTI`` = R
  draws per tracklet, item/feature row ``i·R + r`` = draw r of sample i (R = 1 for images).
"""
import logging
import random
from typing import Sequence

import numpy as np
import torch
from torch.utils.data import BatchSampler, DataLoader

from .common import FrameDataset, SampleDataset, collate_samples
from .datasets import DATASET_REGISTRY, ReIDDataset, Sample
from .samplers import SAMPLER_REGISTRY, InferenceSampler, dist_info
from .transforms import build_transforms

logger = logging.getLogger(__name__)

__all__ = ["build_dataset", "build_train_loader", "build_inference_loader", "build_cluster_loader",
           "is_single_frame", "InfiniteBatchSampler"]


def build_dataset(cfg, name: str) -> ReIDDataset:
    dataset = DATASET_REGISTRY.get(name)(cfg.DATASETS.ROOT, cfg)
    dataset.show_summary()
    return dataset


def is_single_frame(samples: Sequence[Sample]) -> bool:
    """True when every sample has exactly one frame (an image dataset)."""
    return all(len(s.frames) == 1 for s in samples)


def _seed_worker(worker_id: int) -> None:
    """Derive numpy/python seeds from the per-worker torch seed that DataLoader sets."""
    seed = torch.initial_seed() % 2**32
    np.random.seed(seed)
    random.seed(seed)


def build_train_loader(cfg, samples: Sequence[Sample], epoch: int, start_batch: int = 0) -> DataLoader:
    """Endless P×K batches of pseudo-labelled ``samples``; all randomness is seeded by (SEED, epoch).
    With W distributed ranks each rank gets ``SOLVER.IMS_PER_BATCH // W`` samples per batch.
    ``start_batch``: skip that many batches without loading them (resuming inside an epoch)."""
    rank, world = dist_info()
    sampler = SAMPLER_REGISTRY.get(cfg.DATALOADER.SAMPLER)(samples, cfg.DATALOADER.NUM_INSTANCES, cfg.SEED)
    sampler.set_epoch(epoch)
    d = cfg.DATALOADER
    seq_len = None if is_single_frame(samples) else int(d.TRAIN_SEQ_LEN)
    dataset = SampleDataset(samples, build_transforms(cfg, is_train=True), cfg.DATASETS.SKIP_CORRUPT,
                            seq_len=seq_len, sample_mode=d.TRAIN_SAMPLE, random_clips=True)
    batch = cfg.SOLVER.IMS_PER_BATCH // world
    if batch < 1 or cfg.SOLVER.IMS_PER_BATCH % world:
        raise ValueError(f"SOLVER.IMS_PER_BATCH={cfg.SOLVER.IMS_PER_BATCH} must be a positive multiple "
                         f"of the number of processes ({world})")
    return DataLoader(
        dataset,
        batch_sampler=SeededBatches(InfiniteBatchSampler(sampler, batch), (cfg.SEED, epoch, rank),
                                    start_batch),
        num_workers=d.NUM_WORKERS,
        collate_fn=collate_samples,
        worker_init_fn=_seed_worker,
        generator=torch.Generator().manual_seed(cfg.SEED * 100003 + epoch + 1000003 * rank),
        pin_memory=torch.cuda.is_available(),
    )


class InfiniteBatchSampler(BatchSampler):
    """Full batches cut from an endless stream of sampler passes, so that one DataLoader iterator
    (and its workers) serves a whole epoch however many passes it takes."""

    def __init__(self, sampler, batch_size: int) -> None:
        super().__init__(sampler, batch_size, drop_last=True)

    def __iter__(self):
        buffer: list = []
        while True:
            pass_indices = list(self.sampler)
            if not pass_indices:
                raise RuntimeError("The training sampler yields no index: the pseudo-labelled set is empty")
            buffer.extend(pass_indices)
            while len(buffer) >= self.batch_size:
                yield buffer[:self.batch_size]
                del buffer[:self.batch_size]


class SeededBatches:
    """Wraps a batch sampler: yields ``[(index, item_seed), ...]`` where ``item_seed`` depends only
    on ``key`` (e.g. (SEED, epoch, rank)) and the item's position in the stream; the first ``start``
    batches of the stream are skipped."""

    def __init__(self, batch_sampler, key, start: int = 0) -> None:
        self.batch_sampler, self.start = batch_sampler, start
        self.base = int(np.random.SeedSequence([int(k) for k in key]).generate_state(1, np.uint64)[0])

    def __iter__(self):
        pos = 0
        for b, batch in enumerate(self.batch_sampler):
            if b >= self.start:
                yield [(i, (self.base + 1000003 * (pos + j)) % 2**63) for j, i in enumerate(batch)]
            pos += len(batch)

    def __len__(self) -> int:
        return len(self.batch_sampler)


def _loader(cfg, dataset, batch_size: int, persistent: bool = True, rank=None, world_size=None):
    workers = cfg.DATALOADER.NUM_WORKERS
    return DataLoader(
        dataset,
        batch_size=batch_size,
        sampler=InferenceSampler(len(dataset), *((0, 1) if world_size is None else (rank, world_size))),
        num_workers=workers,
        persistent_workers=persistent and workers > 0,
        collate_fn=collate_samples,
        pin_memory=torch.cuda.is_available(),
    )


def build_inference_loader(cfg, samples: Sequence[Sample], batch_size: int, mode: str = "auto",
                           rank=None, world_size=None) -> DataLoader:
    """Samples in their given order, test transforms.

    ``mode``: "image" (first frame of each sample, ``[B, 3, H, W]``), "frames" (all frames of
    all samples, ``batch_size`` frames per batch, with ``segments``) or "auto" (image when every
    sample has one frame, else frames).  ``rank``/``world_size`` (default: no sharding, even under
    torch.distributed) shard the order contiguously."""
    transform = build_transforms(cfg, is_train=False)
    if mode == "auto":
        mode = "image" if is_single_frame(samples) else "frames"
    if mode == "image":
        dataset = SampleDataset(samples, transform, cfg.DATASETS.SKIP_CORRUPT)
    elif mode == "frames":
        dataset = FrameDataset(samples, transform, cfg.DATASETS.SKIP_CORRUPT)
    else:
        raise ValueError(f"inference loader mode must be 'auto', 'image' or 'frames', got {mode!r}")
    return _loader(cfg, dataset, batch_size, True, rank, world_size)


def build_cluster_loader(cfg, samples: Sequence[Sample], epoch: int = 0) -> DataLoader:
    """Loader for clustering features: one item per (sample, draw), item ``k = i·R + r``.

    Images: R = 1, ``CLUSTER.IMS_PER_BATCH`` images per batch.  Video: clips of
    ``DATALOADER.CLUSTER_SEQ_LEN`` frames (``CLUSTER_SAMPLE``), R = ``CLUSTER_SAMPLE_MULTI``
    draws per tracklet seeded by (SEED, epoch, k), ``CLUSTER_BATCH_SIZE`` clips per batch (0:
    ``CLUSTER.IMS_PER_BATCH // CLUSTER_SEQ_LEN``).  ``loader.dataset.draws`` is R.  Rebuild it
    (cheap) for a new epoch to redraw the windows.  In a distributed job each rank loads one
    contiguous shard of the items (``extract_features`` sums the shards)."""
    d = cfg.DATALOADER
    transform = build_transforms(cfg, is_train=False)
    shard = dist_info()  # one shard per rank; ``extract_features`` gathers them
    if is_single_frame(samples):
        return _loader(cfg, SampleDataset(samples, transform, cfg.DATASETS.SKIP_CORRUPT),
                       cfg.CLUSTER.IMS_PER_BATCH, True, *shard)
    seq_len = int(d.CLUSTER_SEQ_LEN)
    dataset = SampleDataset(samples, transform, cfg.DATASETS.SKIP_CORRUPT, seq_len=seq_len,
                            sample_mode=d.CLUSTER_SAMPLE, draws=int(d.CLUSTER_SAMPLE_MULTI),
                            seed=cfg.SEED, epoch=epoch, random_clips=True)
    batch = int(d.CLUSTER_BATCH_SIZE) or max(1, cfg.CLUSTER.IMS_PER_BATCH // seq_len)
    return _loader(cfg, dataset, batch, False, *shard)
