"""k-reciprocal re-ranking (Zhong et al., CVPR 2017) of the query x gallery distance, sparse.

Over the union ``X = [query; gallery]`` (N = Q + G items), with ``d(i, j) = ||x_i - x_j||^2``
(features L2-normalised first for ``metric="cosine"``, so that ``d = 2 - 2 cos``, proportional to
``1 - cos``):

* original distance  ``o(i, j) = d(i, j) / max_c d(i, c)``  (row max over all N items; the paper's
  code divides by the column max of its symmetric matrix, which is the same),
* ``rank[i]`` = the ``k1 + 1`` nearest items (self included), as in the paper's code,
* ``R(i, k1)``, its expansion ``R*(i)`` by the ``R(c, round(k1 / 2))`` that overlap it by more
  than 2/3, ``V[i, j] = exp(-o(i, j)) / sum_{c in R*(i)} exp(-o(i, c))`` on ``R*(i)``,
  ``V'[i] = mean_{j in rank[i, :k2]} V[j]``,
* Jaccard  ``J(i, j) = 1 - m_ij / (2 - m_ij)``,  ``m_ij = sum_c min(V'[i, c], V'[j, c])``,
* final    ``F(q, g) = (1 - lambda) * J(q, g) + lambda * o(q, g)``  on the query x gallery block.

The sets, ``V``, ``V'`` and ``J`` come from :func:`unreidusl.cluster.jaccard.jaccard_distance`
(``search_k=k1 + 1``, ``encode_norm`` = the row maxima, ``rows`` = the query rows; sparse, only
``J < 1`` is stored) and the kNN plus row maxima from one blocked pass of
:func:`unreidusl.cluster.knn.knn_search` (``return_max=True``).  Dense memory is ``O(chunk x G)``:
``F`` is produced for query row blocks on demand.

Difference to the paper's code: it squares its (Euclidean) input distances; here ``d`` already is
the squared distance and is not squared again (AuxUSLReID squares its squared distances).
"""
import logging
import time

import numpy as np

from ..cluster.jaccard import jaccard_distance
from ..cluster.knn import knn_search
from .rank import _feature_chunks

__all__ = ["ReRankedDistance", "re_ranking"]

logger = logging.getLogger(__name__)


def _is_torch(x):
    return type(x).__module__.startswith("torch")


def _union(qf, gf, metric):
    """``[qf; gf]`` as float32 (torch stays torch, on the query's device), normalised for cosine."""
    if _is_torch(qf) or _is_torch(gf):
        import torch  # noqa: PLC0415 - only for tensor inputs

        qf = torch.as_tensor(qf).detach()
        x = torch.cat([qf.float(), torch.as_tensor(gf).detach().to(qf.device).float()])
        return torch.nn.functional.normalize(x, dim=1) if metric == "cosine" else x
    x = np.concatenate([np.asarray(qf, np.float32), np.asarray(gf, np.float32)])
    if metric == "cosine":
        x /= np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
    return x


class ReRankedDistance:
    """Lazy re-ranked ``Q x G`` distance ``F`` (module docstring); ``rows(start, stop)`` gives
    dense blocks, ``shape``/``dtype``/``d[s:e]`` make it a lazy matrix for ``evaluate_rank``.

    Args:
        qf, gf: ``[Q, d]`` and ``[G, d]`` features (numpy or torch; torch runs the kNN on its
            device).
        k1, k2, lambda_value: re-ranking parameters (paper defaults 20, 6, 0.3).
        metric: ``"euclidean"`` or ``"cosine"`` (features L2-normalised first).
        knn_backend: :func:`knn_search` backend; the row maxima need one extra blocked pass
            with ``"faiss"`` and the approximate backends (an exact pass over all pairs).
        ann: the approximate backends' :class:`~unreidusl.cluster.ann.AnnParams`
            (``CLUSTER.ANN``; default ``AnnParams()``).
    """

    def __init__(self, qf, gf, k1=20, k2=6, lambda_value=0.3, metric="euclidean",
                 knn_backend="torch", device=None, ann=None):
        if metric not in ("euclidean", "cosine"):
            raise ValueError(f"metric must be 'euclidean' or 'cosine', got {metric!r}")
        if not 0.0 <= lambda_value <= 1.0:
            raise ValueError(f"lambda_value must be in [0, 1], got {lambda_value}")
        if int(k1) < 1 or int(k2) < 1:
            raise ValueError(f"k1 and k2 must be >= 1, got k1={k1}, k2={k2}")
        if len(qf.shape) != 2 or len(gf.shape) != 2 or qf.shape[1] != gf.shape[1]:
            raise ValueError(f"qf and gf must be 2-D with the same feature size, got shapes "
                             f"{tuple(qf.shape)} and {tuple(gf.shape)}")
        t0 = time.perf_counter()
        self.num_query, self.num_gallery = int(qf.shape[0]), int(gf.shape[0])
        self.shape = (self.num_query, self.num_gallery)
        self.dtype = np.dtype(np.float32)
        self.k1, self.k2, self.lam = int(k1), int(k2), float(lambda_value)
        self.x = _union(qf, gf, metric)
        n = self.x.shape[0]
        search_k = min(self.k1 + 1, n)
        dist2, rank, row_max = knn_search(self.x, k=search_k, backend=knn_backend, device=device,
                                          return_max=True, desc="re-ranking: kNN", ann=ann)
        # an item whose farthest neighbour is at distance 0 has o = 0 everywhere
        self.row_max = np.where(row_max > 0, row_max, 1.0).astype(np.float64)
        jac = jaccard_distance(self.x, self.k1, min(self.k2, search_k), search_k=search_k,
                               knn=(dist2, rank), encode_norm=self.row_max,
                               rows=(0, self.num_query), desc="re-ranking: Jaccard")
        del dist2, rank
        self.jaccard = jac[:, self.num_query:].tocsr()        # Q x G, unstored = 1
        self.jaccard.sort_indices()
        logger.info("k-reciprocal re-ranking (k1=%d, k2=%d, lambda=%.2f) of %d x %d prepared in "
                    "%.1fs (%d stored Jaccard pairs)", self.k1, self.k2, self.lam, self.num_query,
                    self.num_gallery, time.perf_counter() - t0, self.jaccard.nnz)

    def rows(self, start, stop):
        """Dense float32 ``F`` for queries ``start:stop``."""
        start, stop = max(0, int(start)), min(self.num_query, int(stop))
        b, q = max(0, stop - start), self.num_query
        if b == 0:
            return np.zeros((0, self.num_gallery), np.float32)
        _, d = next(_feature_chunks(self.x[start:stop], self.x[q:], "euclidean", b))
        out = np.asarray(d, dtype=np.float32)
        out *= (self.lam / self.row_max[start:stop, None]).astype(np.float32)  # lambda * o(q, g)
        jac = np.full((b, self.num_gallery), 1.0 - self.lam, np.float32)     # unstored J = 1
        block = self.jaccard[start:stop]
        jac[np.repeat(np.arange(b), np.diff(block.indptr)), block.indices] = (
            (1.0 - self.lam) * block.data)
        out += jac
        return out

    def __getitem__(self, key):
        if not isinstance(key, slice) or key.step not in (None, 1):
            raise TypeError("ReRankedDistance supports contiguous row slices d[start:stop] only")
        start, stop, _ = key.indices(self.num_query)
        return self.rows(start, stop)


def re_ranking(qf, gf, k1=20, k2=6, lambda_value=0.3, metric="euclidean", knn_backend="torch",
               ann=None):
    """Dense ``Q x G`` re-ranked distance (convenience for small problems)."""
    rr = ReRankedDistance(qf, gf, k1, k2, lambda_value, metric, knn_backend, ann=ann)
    return rr.rows(0, rr.num_query)
