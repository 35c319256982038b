"""Re-ID ranking metrics: mAP, CMC (Market-style) and mINP, with a compiled and a NumPy kernel.

Protocol (open-reid / Market-1501):

* Per query, gallery items with the **same pid and the same camera** are removed ("junk").
  In *camera-free* mode nothing is removed (every same-pid gallery item is a positive).
* Queries without a remaining positive are skipped and counted in ``num_skipped_queries``.
* The valid gallery is ranked by ascending distance; **ties are broken by gallery index**
  (stable order), so with ranks ``r_1 < ... < r_P`` of the P positives:

  - ``AP   = (1/P) * sum_i i / r_i``  (non-interpolated; equals sklearn
    ``average_precision_score(matches, -dist)`` when there are no ties),
  - ``INP  = P / r_P``  (mINP = mean over valid queries),
  - ``cmc[k] = fraction of valid queries with r_1 <= k + 1``  (first-match break); the curve
    always has ``max_rank`` entries and saturates at 1 when the valid gallery is short.

Distances are used in their own precision: float32 stays float32, float16 is widened to
float32 (exact) and everything else becomes float64, identically for both kernels.
"""
import logging

import numpy as np

from ..utils.compiled import CompiledKernel
from ..utils.progress import progress
from .rank_numpy import rank_chunk_numpy

__all__ = ["evaluate_rank", "evaluate_features", "compiled_available"]

logger = logging.getLogger("unreidusl.evaluation")

_CHUNK_BYTES = 64 << 20  # distance rows converted/processed at a time
# the API number is bumped together with RANK_CY_API in csrc/rank_cy.pyx
_KERNEL = CompiledKernel("unreidusl.evaluation.rank_cy", "rank_chunk_cy", "RANK_CY_API", 1,
                         "the NumPy evaluator", logger, logging.WARNING)


def compiled_available():
    """True if the compiled ``rank_cy`` kernel can be used."""
    return _KERNEL.available()


def _to_numpy(x):
    """Torch tensors (any device) and array-likes to NumPy, without importing torch."""
    if hasattr(x, "detach") and hasattr(x, "cpu"):
        x = x.detach().cpu()
        if str(x.dtype) == "torch.bfloat16":
            x = x.float()
        return x.numpy()
    return np.asarray(x)


def _as_ids(x, name):
    arr = _to_numpy(x)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be 1-D, got shape {arr.shape}")
    if arr.dtype.kind in "iub":
        return np.ascontiguousarray(arr, dtype=np.int64)
    if arr.dtype.kind == "f" and np.all(np.isfinite(arr)) and np.all(arr == np.round(arr)):
        return np.ascontiguousarray(arr, dtype=np.int64)
    raise ValueError(f"{name} must hold integers, got dtype {arr.dtype}")


def _dist_dtype(dtype):
    name = str(dtype).replace("torch.", "")
    return np.float32 if name in ("float32", "float16", "bfloat16") else np.float64


def _check_shapes(dist_shape, q_pids, g_pids, q_camids, g_camids):
    if len(dist_shape) != 2:
        raise ValueError(f"distmat must be 2-D (num_query, num_gallery), got shape "
                         f"{tuple(dist_shape)}")
    nq, ng = dist_shape
    for name, arr, n, what in (("q_pids", q_pids, nq, "rows"),
                               ("q_camids", q_camids, nq, "rows"),
                               ("g_pids", g_pids, ng, "columns"),
                               ("g_camids", g_camids, ng, "columns")):
        if arr.shape[0] != n:
            raise ValueError(f"{name} has shape {arr.shape} but distmat has shape "
                             f"{tuple(dist_shape)} ({n} {what})")


class _RankAccumulator:
    """Prepares the gallery once and evaluates query chunks with the selected kernel."""

    def __init__(self, q_pids, g_pids, q_camids, g_camids, use_cython, camera_free):
        self.q_pids = _as_ids(q_pids, "q_pids")
        self.g_pids = _as_ids(g_pids, "g_pids")
        self.q_cams = _as_ids(q_camids, "q_camids")
        self.g_cams = _as_ids(g_camids, "g_camids")
        if camera_free is None:
            cams = np.concatenate([self.q_cams, self.g_cams])
            camera_free = cams.size > 0 and bool(np.all(cams == cams[0]))
            if camera_free:
                logger.warning("All query and gallery camera ids equal %d: using camera-free "
                               "evaluation (no same-camera items removed). Pass camera_free=False "
                               "to force the standard protocol.", int(cams[0]))
        self.camera_free = bool(camera_free)
        kernel = _KERNEL.get() if use_cython else None
        self.kernel = kernel or rank_chunk_numpy
        self.impl = "cython" if kernel else "numpy"
        # same-pid gallery items of query q: g_order[lo[q]:hi[q]] (ascending gallery index)
        self.g_order = np.argsort(self.g_pids, kind="stable").astype(np.int64)
        sorted_pids = self.g_pids[self.g_order]
        self.lo = np.searchsorted(sorted_pids, self.q_pids, side="left").astype(np.int64)
        self.hi = np.searchsorted(sorted_pids, self.q_pids, side="right").astype(np.int64)
        nq = self.q_pids.shape[0]
        self.ap = np.zeros(nq, np.float64)
        self.inp = np.zeros(nq, np.float64)
        self.first = np.zeros(nq, np.int64)
        self.npos = np.zeros(nq, np.int64)

    def add(self, start, dist_chunk, dtype):
        """Evaluate queries ``start : start + len(dist_chunk)``."""
        chunk = np.ascontiguousarray(_to_numpy(dist_chunk), dtype=dtype)
        if chunk.size and np.isnan(chunk.max()):  # max propagates NaN; no temporaries
            raise ValueError("distmat contains NaN; ranks are undefined")
        stop = start + chunk.shape[0]
        sl = slice(start, stop)
        self.kernel(chunk, self.q_pids[sl], self.q_cams[sl], self.g_pids, self.g_cams,
                    self.g_order, self.lo[sl], self.hi[sl], self.camera_free,
                    self.ap[sl], self.inp[sl], self.first[sl], self.npos[sl])

    def result(self, max_rank):
        valid = self.npos > 0
        num_valid = int(valid.sum())
        if num_valid == 0:
            raise ValueError(
                "No query has a true match in the gallery after removing same-pid same-camera "
                "items (all %d queries skipped). If the data has a single camera, use "
                "camera_free=True." % self.q_pids.shape[0])
        first = self.first[valid]
        hits = np.bincount(np.minimum(first, max_rank + 1) - 1, minlength=max_rank + 1)
        cmc = np.cumsum(hits[:max_rank]) / num_valid
        return {
            "mAP": float(self.ap[valid].mean()),
            "cmc": cmc.astype(np.float64),
            "mINP": float(self.inp[valid].mean()),
            "num_valid_queries": num_valid,
            "num_skipped_queries": int(self.q_pids.shape[0] - num_valid),
            "impl": self.impl,
        }


def _check_max_rank(max_rank):
    if int(max_rank) != max_rank or max_rank < 1:
        raise ValueError(f"max_rank must be a positive integer, got {max_rank!r}")
    return int(max_rank)


def evaluate_rank(distmat, q_pids, g_pids, q_camids, g_camids, max_rank=50, use_cython=True,
                  camera_free=None):
    """mAP / CMC / mINP of a (num_query, num_gallery) distance matrix (smaller = more similar).

    Args:
        distmat: array-like or torch tensor (also np.memmap; it is read in row chunks).
        q_pids, g_pids, q_camids, g_camids: 1-D integer ids.
        max_rank: length of the returned CMC curve.
        use_cython: use the compiled kernel when it is built, else NumPy (one warning).
        camera_free: None = auto (True iff all query and gallery cameras are one value; logs a
            warning); True = remove nothing, every same-pid gallery item is a positive;
            False = remove same-pid same-camera items (standard protocol).

    Returns:
        dict with ``mAP``, ``cmc`` (float64[max_rank]), ``mINP`` (all in [0, 1]),
        ``num_valid_queries``, ``num_skipped_queries`` and ``impl`` ("cython" | "numpy").

    Raises:
        ValueError: on shape/dtype problems, NaN distances, or when every query is skipped.
    """
    max_rank = _check_max_rank(max_rank)
    if not hasattr(distmat, "shape") or not hasattr(distmat, "dtype"):
        distmat = np.asarray(distmat)
    acc = _RankAccumulator(q_pids, g_pids, q_camids, g_camids, use_cython, camera_free)
    _check_shapes(tuple(distmat.shape), acc.q_pids, acc.g_pids, acc.q_cams, acc.g_cams)
    dtype = _dist_dtype(distmat.dtype)
    nq, ng = distmat.shape
    rows = max(1, _CHUNK_BYTES // max(1, ng * np.dtype(dtype).itemsize))
    with progress(total=nq, desc="ranking", unit="query") as bar:
        for start in range(0, nq, rows):
            chunk = distmat[start:start + rows]
            acc.add(start, chunk, dtype)
            bar.update(chunk.shape[0])
    return acc.result(max_rank)


def _feature_chunks(qf, gf, metric, chunk_size):
    """Yield (start, (b, G) distances) for query chunks; torch inputs stay on their device."""
    if hasattr(qf, "detach") or hasattr(gf, "detach"):
        import torch  # noqa: PLC0415 - optional, only for tensor inputs

        qf = torch.as_tensor(qf).detach()
        gf = torch.as_tensor(gf).detach().to(qf.device)
        dtype = torch.float64 if torch.float64 in (qf.dtype, gf.dtype) else torch.float32
        qf, gf = qf.to(dtype), gf.to(dtype)
        if metric == "cosine":
            qf = torch.nn.functional.normalize(qf, dim=1)
            gf = torch.nn.functional.normalize(gf, dim=1)
        g2 = (gf * gf).sum(1)
        for s in range(0, qf.shape[0], chunk_size):
            q = qf[s:s + chunk_size]
            if metric == "cosine":
                d = 1.0 - q @ gf.t()
            else:
                d = torch.addmm(g2.unsqueeze(0), q, gf.t(), alpha=-2.0)
                d.add_((q * q).sum(1, keepdim=True))
                d.clamp_(min=0)
            yield s, d.cpu().numpy()
        return
    dtype = np.float64 if np.float64 in (np.asarray(qf).dtype, np.asarray(gf).dtype) else np.float32
    qf, gf = np.asarray(qf, dtype=dtype), np.asarray(gf, dtype=dtype)
    if metric == "cosine":
        qf = qf / np.maximum(np.linalg.norm(qf, axis=1, keepdims=True), 1e-12)
        gf = gf / np.maximum(np.linalg.norm(gf, axis=1, keepdims=True), 1e-12)
    g2 = np.einsum("ij,ij->i", gf, gf)
    for s in range(0, qf.shape[0], chunk_size):
        q = qf[s:s + chunk_size]
        d = q @ gf.T
        if metric == "cosine":
            np.subtract(1.0, d, out=d)
        else:
            d *= -2.0
            d += g2[None, :]
            d += np.einsum("ij,ij->i", q, q)[:, None]
            np.maximum(d, 0.0, out=d)
        yield s, d


def evaluate_features(qf, gf, q_pids, g_pids, q_camids, g_camids, max_rank=50, chunk_size=None,
                      metric="euclidean", dist_fn=None, use_cython=True, camera_free=None):
    """Like :func:`evaluate_rank` but from features; the Q x G matrix is never materialised.

    Distances are computed for ``chunk_size`` queries at a time (default: ~64 MB of float32
    distances per chunk) and ranked immediately:

    * ``metric="euclidean"``: squared Euclidean ``|q|^2 + |g|^2 - 2 q.g`` (clamped at 0; same
      ranking as Euclidean; equals ``2 - 2 cos`` for L2-normalised features),
    * ``metric="cosine"``: ``1 - cos(q, g)``,
    * ``dist_fn(q_chunk, gf) -> (b, G)`` overrides ``metric`` (arrays or tensors).

    NumPy inputs use BLAS matmul; torch tensors are computed on their own device (torch is
    imported only then). Float64 inputs are kept in float64, everything else uses float32.
    """
    max_rank = _check_max_rank(max_rank)
    if metric not in ("euclidean", "cosine"):
        raise ValueError(f"metric must be 'euclidean' or 'cosine', got {metric!r}")
    qshape, gshape = tuple(qf.shape), tuple(gf.shape)
    if len(qshape) != 2 or len(gshape) != 2 or qshape[1] != gshape[1]:
        raise ValueError(f"qf and gf must be 2-D with the same feature size, got shapes "
                         f"qf {qshape} and gf {gshape}")
    acc = _RankAccumulator(q_pids, g_pids, q_camids, g_camids, use_cython, camera_free)
    _check_shapes((qshape[0], gshape[0]), acc.q_pids, acc.g_pids, acc.q_cams, acc.g_cams)
    if chunk_size is None:
        chunk_size = max(1, _CHUNK_BYTES // max(1, 4 * gshape[0]))
    if dist_fn is not None:
        chunks = ((s, dist_fn(qf[s:s + chunk_size], gf)) for s in range(0, qshape[0], chunk_size))
    else:
        chunks = _feature_chunks(qf, gf, metric, int(chunk_size))
    with progress(total=qshape[0], desc="ranking", unit="query") as bar:
        for start, dist in chunks:
            if tuple(dist.shape) != (min(chunk_size, qshape[0] - start), gshape[0]):
                raise ValueError(f"distance chunk at query {start} has shape {tuple(dist.shape)}, "
                                 f"expected ({min(chunk_size, qshape[0] - start)}, {gshape[0]})")
            acc.add(start, dist, _dist_dtype(dist.dtype))
            bar.update(dist.shape[0])
    return acc.result(max_rank)
