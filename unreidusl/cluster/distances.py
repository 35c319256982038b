"""Registered clustering distances, and the training-side SCP / STS modification of a distance.

Importing this module does not import torch (a numpy-only clustering process stays small)."""
from __future__ import annotations

import sys

import numpy as np
import scipy.sparse as sp

from .build import DISTANCE_REGISTRY
from .jaccard import jaccard_distance
from .sparse_rows import row_blocks


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
    """k-reciprocal Jaccard distance (docs/clustering.md), sparse."""

    prunable = True

    def __init__(self, cfg) -> None:
        self.k1, self.k2, self.backend = cfg.CLUSTER.K1, cfg.CLUSTER.K2, cfg.CLUSTER.KNN_BACKEND
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
        return jaccard_distance(features, k1=self.k1, k2=self.k2, knn_backend=self.backend,
                                device=knn_device(self.model_device), search_k=self.search_k,
                                encode_dist=self.encode_dist, max_dist=max_dist)


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


def apply_aux_terms(dist, same_camera=None, cce_lambda: float = 0.006, plausibility=None,
                    str_lambda: float = 0.6, str_gamma: float = 8.0, block: int = 1 << 22):
    """Training-side SCP then STS (AuxUSLReID's training terms) on a copy of the N x N distance:

        D' = (D + lambda_c * S) * (1 + lambda_s * exp(-gamma * P))

    ``same_camera`` / ``plausibility`` are callables ``(rows, cols) -> S or P`` of index pairs
    (None = term off); the formulas are ``utils.aux_math``'s, shared with the test side.

    Sparse D (unstored = 1): only the stored entries are modified.  Exactness: with
    ``lambda_c, lambda_s >= 0`` an unstored pair's true value ``(1 + lambda_c S)(1 + ...)`` is
    still >= 1, so every comparison against a threshold below 1 (eps, the ICDBSCAN relaxation
    ``|r| eps``, the eps-neighbour pairs) gives the same answer as the dense computation.  Negative
    lambdas could pull unstored pairs below the threshold and are refused for sparse input.
    Dense D: every entry, in row blocks of about ``block`` elements."""
    from ..utils.aux_math import apply_scp, apply_sts  # noqa: PLC0415

    def modify(vals, rows, cols):
        if same_camera is not None:
            apply_scp(vals, same_camera(rows, cols), cce_lambda)
        if plausibility is not None:
            apply_sts(vals, plausibility(rows, cols), str_lambda, str_gamma)
        return vals

    if same_camera is None and plausibility is None:
        return dist
    if sp.issparse(dist):
        if (same_camera is not None and cce_lambda < 0) or (plausibility is not None
                                                              and str_lambda < 0):
            raise ValueError("SCP/STS on a sparse distance need lambda >= 0 (unstored entries "
                             "must stay >= 1)")
        out = dist.tocsr().copy()
        for r0, r1 in row_blocks(out.indptr):            # bounded temporaries for any nnz
            e0, e1 = out.indptr[r0], out.indptr[r1]
            rows = np.repeat(np.arange(r0, r1, dtype=np.int64), np.diff(out.indptr[r0:r1 + 1]))
            vals = modify(out.data[e0:e1].astype(np.float64), rows,
                          out.indices[e0:e1].astype(np.int64))
            out.data[e0:e1] = vals
        return out
    d = np.array(dist, dtype=np.result_type(np.asarray(dist).dtype, np.float32), copy=True)
    n, m = d.shape
    step = max(1, block // max(m, 1))
    for s in range(0, n, step):
        e = min(n, s + step)
        rows = np.repeat(np.arange(s, e, dtype=np.int64), m)
        cols = np.tile(np.arange(m, dtype=np.int64), e - s)
        vals = modify(d[s:e].ravel().astype(np.float64), rows, cols)
        d[s:e] = vals.reshape(e - s, m)
    return d
