from .build import build_dataset, build_inference_loader, build_train_loader
from .common import CorruptImageError, SampleDataset, read_image
from .datasets import DATASET_REGISTRY, DatasetFormatError, ReIDDataset, Sample
from .samplers import SAMPLER_REGISTRY

__all__ = [
    "build_dataset", "build_inference_loader", "build_train_loader", "CorruptImageError",
    "SampleDataset", "read_image", "DATASET_REGISTRY", "DatasetFormatError", "ReIDDataset", "Sample",
    "SAMPLER_REGISTRY",
]
