"""Builders that turn ``cfg`` into datasets and data loaders."""
import logging
import random
from typing import Sequence

import numpy as np
import torch
from torch.utils.data import BatchSampler, DataLoader

from .common import SampleDataset, collate_samples
from .datasets import DATASET_REGISTRY, ReIDDataset, Sample
from .samplers import SAMPLER_REGISTRY
from .transforms import build_transforms

logger = logging.getLogger(__name__)


def build_dataset(cfg, name: str) -> ReIDDataset:
    dataset = DATASET_REGISTRY.get(name)(cfg.DATASETS.ROOT, cfg)
    dataset.show_summary()
    return dataset


def _seed_worker(worker_id: int) -> None:
    """Derive numpy/python seeds from the per-worker torch seed that DataLoader sets."""
    seed = torch.initial_seed() % 2**32
    np.random.seed(seed)
    random.seed(seed)


def build_train_loader(cfg, samples: Sequence[Sample], epoch: int) -> DataLoader:
    """P×K batches of pseudo-labelled ``samples``; every source of randomness is seeded by (SEED, epoch)."""
    sampler = SAMPLER_REGISTRY.get(cfg.DATALOADER.SAMPLER)(samples, cfg.DATALOADER.NUM_INSTANCES, cfg.SEED)
    sampler.set_epoch(epoch)
    batch_size = cfg.SOLVER.IMS_PER_BATCH
    if len(sampler) < batch_size:
        logger.warning("Only %d samples per pass for a batch of %d: batches will repeat samples",
                       len(sampler), batch_size)
    return DataLoader(
        SampleDataset(samples, build_transforms(cfg, is_train=True), cfg.DATASETS.SKIP_CORRUPT),
        batch_sampler=_RepeatingBatchSampler(sampler, batch_size),
        num_workers=cfg.DATALOADER.NUM_WORKERS,
        collate_fn=collate_samples,
        worker_init_fn=_seed_worker,
        generator=torch.Generator().manual_seed(cfg.SEED * 100003 + epoch),
        pin_memory=torch.cuda.is_available(),
    )


class _RepeatingBatchSampler(BatchSampler):
    """Full batches only; a pass shorter than one batch is extended by further passes."""

    def __init__(self, sampler, batch_size: int) -> None:
        super().__init__(sampler, batch_size, drop_last=True)

    def __iter__(self):
        indices = list(self.sampler)
        while 0 < len(indices) < self.batch_size:
            indices += list(self.sampler)
        for start in range(0, len(indices) - self.batch_size + 1, self.batch_size):
            yield indices[start:start + self.batch_size]

    def __len__(self) -> int:
        return max(1, len(self.sampler) // self.batch_size)


def build_inference_loader(cfg, samples: Sequence[Sample], batch_size: int) -> DataLoader:
    """Samples in their given order, test transforms."""
    return DataLoader(
        SampleDataset(samples, build_transforms(cfg, is_train=False), cfg.DATASETS.SKIP_CORRUPT),
        batch_size=batch_size,
        shuffle=False,
        num_workers=cfg.DATALOADER.NUM_WORKERS,
        persistent_workers=cfg.DATALOADER.NUM_WORKERS > 0,
        collate_fn=collate_samples,
        pin_memory=torch.cuda.is_available(),
    )
