"""Registered clustering distances (the training-side SCP / STS modification of a distance is
``auxinfo.terms.apply_aux_terms``).

Importing this module does not import torch (a numpy-only clustering process stays small)."""
from __future__ import annotations

import sys

import numpy as np
import scipy.sparse as sp

from .ann import AnnParams
from .build import DISTANCE_REGISTRY
from .jaccard import jaccard_distance
from .knn import knn_search


def knn_device(model_device: str):
    """Device of the clustering kNN for MODEL.DEVICE: CUDA when the model runs there (the torch
    backend on the GPU, or faiss-gpu's index with the faiss backend), else None (CPU). Without torch
    imported the features are numpy arrays and the kNN runs on the CPU."""
    torch = sys.modules.get("torch")
    if model_device == "cpu" or torch is None:
        return None
    if model_device == "auto":
        return "cuda" if torch.cuda.is_available() else None
    return model_device


class Distance:
    """Base of the clustering distances: built as ``obj(cfg)``, called as ``obj(features, *,
    max_dist=None)``.  ``prunable``: the result is sparse and, given ``max_dist``, may drop the pairs
    farther than it (they count as far apart: unstored = 1)."""

    prunable = False

    def __call__(self, features, *, max_dist=None):
        raise NotImplementedError


@DISTANCE_REGISTRY.register()
class JaccardDistance(Distance):
    """k-reciprocal Jaccard distance (docs/clustering.md), sparse. Its kNN search is
    ``CLUSTER.KNN_BACKEND`` with the approximate backends' ``CLUSTER.ANN`` parameters; the features
    may be a ``numpy.memmap`` (``CLUSTER.FEATURES_ON_DISK``)."""

    prunable = True

    def __init__(self, cfg) -> None:
        self.k1, self.k2, self.backend = cfg.CLUSTER.K1, cfg.CLUSTER.K2, cfg.CLUSTER.KNN_BACKEND
        self.ann = AnnParams.from_cfg(cfg.CLUSTER.ANN)
        self.model_device = cfg.MODEL.DEVICE
        # CLUSTER.K1_INCLUDES_SELF False: self + k1 neighbours (3C's variant)
        self.search_k = None if cfg.CLUSTER.K1_INCLUDES_SELF else self.k1 + 1
        # CLUSTER.JACCARD_WEIGHTS: softmax(−||x_i − x_j||²) or the original softmax(−(2 − 2<x_i, x_j>))
        self.encode_dist = cfg.CLUSTER.JACCARD_WEIGHTS
        if self.encode_dist not in ("sqeuclidean", "dot"):
            raise ValueError(f"CLUSTER.JACCARD_WEIGHTS must be 'sqeuclidean' or 'dot', got "
                             f"{self.encode_dist!r}")

    def __call__(self, features: torch.Tensor, *, max_dist=None) -> sp.csr_matrix:
        """With ``max_dist``, only pairs with D <= max_dist are stored (the rest count as far apart)."""
        desc = "Jaccard distance"
        knn = None
        if features.shape[0]:
            knn = knn_search(features, k=self.search_k or self.k1, backend=self.backend,
                             device=knn_device(self.model_device), desc=f"{desc}: kNN", ann=self.ann)
        return jaccard_distance(features, k1=self.k1, k2=self.k2, search_k=self.search_k,
                                encode_dist=self.encode_dist, max_dist=max_dist, knn=knn, desc=desc)


@DISTANCE_REGISTRY.register()
class MixedJaccardDistance(Distance):
    """GL-NCPLR's clustering distance (docs/clustering.md), sparse:

        D_mix = (1 − P·λ1)·J_0 + λ1·Σ_{k=1..P} J_k

    with J_b the Jaccard distance of branch b. The features are the branches side by side,
    [N, (1+P)·d] (global first, P = MODEL.HEADS.NUM_PARTS), as the part models extract them for
    clustering. Unstored entries are 1 in every J_b, so D_mix = 1 − Σ_b w_b·(1 − J_b) is a sparse sum.
    With ``max_dist`` set, J_b is pruned at max_dist / w_b: a pair beyond it has D_mix > max_dist
    whatever the other branches say, so the result below max_dist is exact."""

    prunable = True

    def __init__(self, cfg) -> None:
        self.jaccard = JaccardDistance(cfg)
        self.branches = 1 + cfg.MODEL.HEADS.NUM_PARTS
        lam = cfg.CLUSTER.PART_WEIGHT
        self.weights = [1.0 - (self.branches - 1) * lam] + [lam] * (self.branches - 1)
        if min(self.weights) < 0:
            raise ValueError(f"CLUSTER.PART_WEIGHT={lam} makes the global weight 1 − P·λ1 negative "
                             f"(P = MODEL.HEADS.NUM_PARTS = {self.branches - 1}); use λ1 <= 1/P")

    def __call__(self, features, *, max_dist=None) -> sp.csr_matrix:
        n, width = features.shape
        if width % self.branches:
            raise ValueError(f"MixedJaccardDistance expects {self.branches} branch features side by side "
                             f"(1 + MODEL.HEADS.NUM_PARTS); a width of {width} does not split evenly. "
                             f"Use it with a part model (e.g. META_ARCHITECTURE NCPLR with NUM_PARTS > 0)")
        d = width // self.branches
        similarity = sp.csr_matrix((n, n), dtype=np.float64)
        for b, w in enumerate(self.weights):
            if w == 0:
                continue
            branch_max = None if max_dist is None or max_dist >= w else max_dist / w
            jac = self.jaccard(features[:, b * d:(b + 1) * d], max_dist=branch_max)
            jac.data = w * (1.0 - jac.data.astype(np.float64))
            similarity = similarity + jac
        pairs = similarity.tocoo()
        dist = np.clip(1.0 - pairs.data, 0.0, None)
        keep = pairs.row != pairs.col
        if max_dist is not None:
            keep &= dist <= max_dist
        diag = np.arange(n)                              # D_ii = 0, stored explicitly
        out = sp.csr_matrix((np.concatenate([dist[keep], np.zeros(n)]).astype(np.float32),
                             (np.concatenate([pairs.row[keep], diag]), np.concatenate([pairs.col[keep], diag]))),
                            shape=(n, n))
        out.sort_indices()
        return out


@DISTANCE_REGISTRY.register()
class EuclideanDistance(Distance):
    """Dense Euclidean distance ||x_i − x_j|| (for small N or unit tests)."""

    def __init__(self, cfg=None) -> None:
        pass

    def __call__(self, features: torch.Tensor, *, max_dist=None) -> np.ndarray:
        import torch  # noqa: PLC0415

        x = torch.as_tensor(features, dtype=torch.float32)
        return torch.cdist(x, x).numpy()
