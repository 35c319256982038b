from .build import (build_cluster_loader, build_dataset, build_inference_loader, build_train_loader,
                    is_single_frame)
from .clips import clip_indices
from .common import CorruptImageError, FrameDataset, SampleDataset, read_image
from .datasets import DATASET_REGISTRY, DatasetFormatError, ReIDDataset, Sample, dense_split
from .samplers import SAMPLER_REGISTRY, InferenceSampler

__all__ = [
    "build_dataset", "build_inference_loader", "build_train_loader", "build_cluster_loader",
    "is_single_frame", "clip_indices", "CorruptImageError", "FrameDataset", "SampleDataset",
    "read_image", "DATASET_REGISTRY", "DatasetFormatError", "ReIDDataset", "Sample", "dense_split",
    "SAMPLER_REGISTRY", "InferenceSampler",
]
