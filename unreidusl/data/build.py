"""Builders that turn ``cfg`` into datasets and data loaders."""
import random
from typing import Sequence

import numpy as np
import torch
from torch.utils.data import BatchSampler, DataLoader

from .common import SampleDataset, collate_samples
from .datasets import DATASET_REGISTRY, ReIDDataset, Sample
from .samplers import SAMPLER_REGISTRY
from .transforms import build_transforms

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
    """Endless P×K batches of pseudo-labelled ``samples``; all randomness is seeded by (SEED, epoch)."""
    sampler = SAMPLER_REGISTRY.get(cfg.DATALOADER.SAMPLER)(samples, cfg.DATALOADER.NUM_INSTANCES, cfg.SEED)
    sampler.set_epoch(epoch)
    return DataLoader(
        SampleDataset(samples, build_transforms(cfg, is_train=True), cfg.DATASETS.SKIP_CORRUPT),
        batch_sampler=InfiniteBatchSampler(sampler, cfg.SOLVER.IMS_PER_BATCH),
        num_workers=cfg.DATALOADER.NUM_WORKERS,
        collate_fn=collate_samples,
        worker_init_fn=_seed_worker,
        generator=torch.Generator().manual_seed(cfg.SEED * 100003 + epoch),
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
