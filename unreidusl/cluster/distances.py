"""Registered clustering distances."""
import numpy as np
import scipy.sparse as sp
import torch

from .build import DISTANCE_REGISTRY
from .jaccard import jaccard_distance


@DISTANCE_REGISTRY.register()
class JaccardDistance:
    """k-reciprocal Jaccard distance (spec cluster-contrast-ise-ncplr.md §1.4), sparse."""

    def __init__(self, cfg) -> None:
        self.k1, self.k2, self.backend = cfg.CLUSTER.K1, cfg.CLUSTER.K2, cfg.CLUSTER.KNN_BACKEND

    def __call__(self, features: torch.Tensor) -> sp.csr_matrix:
        return jaccard_distance(features, k1=self.k1, k2=self.k2, knn_backend=self.backend)


@DISTANCE_REGISTRY.register()
class EuclideanDistance:
    """Dense Euclidean distance ||x_i − x_j|| (for small N or unit tests)."""

    def __init__(self, cfg=None) -> None:
        pass

    def __call__(self, features: torch.Tensor) -> np.ndarray:
        x = torch.as_tensor(features, dtype=torch.float32)
        return torch.cdist(x, x).numpy()
