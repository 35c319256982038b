"""Test-time auxiliary information hooked into the query x gallery distance (AuxUSLReID's test terms).

For a chunk of query rows ``r`` (a ``b x G`` block of the distance ``D``) the terms are applied in
AuxUSLReID's order, each only when given (the formulas live in ``utils/aux_math.py``, shared with the
training side):

* **TOC** (time-overlap constraint, ``overlap`` O, boolean): ``D[O] = +inf`` (default), or
  ``D <- D + penalty * O`` for a finite ``overlap_penalty`` (AuxUSLReID uses 1000).  Tracklets that
  overlap in time in the same camera can never be the same identity, so they rank last.
* **SCP** (same-camera penalty, ``same_camera`` S in {0, 1}): ``D <- D + lambda_c * S``.  S can
  come from the camera ids (:class:`CameraMatch`, ``S[q, g] = [cam_q == cam_g]``).
* **STS** (spatio-temporal score, ``plausibility`` P in [0, 1]):
  ``D <- D * (1 + lambda_s * exp(-gamma * P))``; it also scales the SCP term.

Matrices are Q x G in query / gallery order: dense numpy / torch arrays, scipy sparse matrices
(unstored = 0) or any object with ``shape`` and ``rows(start, stop)``.  Only the rows of the
current chunk are densified.  :class:`ChunkedDistance` composes a base distance (the feature
metric, or a re-ranked distance) with these terms; it is both a ``dist_fn`` for
``evaluate_features`` and a lazy matrix for ``evaluate_rank``, so the Q x G distance is never
materialised.
"""
import logging
import math

import numpy as np
import scipy.sparse as sp

from ..utils.aux_math import apply_scp, apply_sts, apply_toc
from .rank import _feature_chunks, _to_numpy

__all__ = ["AuxTerms", "CameraMatch", "ChunkedDistance"]

logger = logging.getLogger(__name__)


class CameraMatch:
    """Lazy same-camera indicator ``S[q, g] = [cam_q == cam_g]`` (Q x G, never materialised)."""

    def __init__(self, q_camids, g_camids):
        self.q = np.asarray(_to_numpy(q_camids)).reshape(-1)
        self.g = np.asarray(_to_numpy(g_camids)).reshape(-1)
        self.shape = (self.q.shape[0], self.g.shape[0])

    def rows(self, start, stop):
        return self.q[start:stop, None] == self.g[None, :]


class _RowSource:
    """A Q x G matrix (dense, sparse or lazy) that hands out dense row blocks."""

    def __init__(self, name, m, shape):
        if m is not None and not hasattr(m, "rows") and not sp.issparse(m):
            m = np.asarray(_to_numpy(m))
        found = tuple(getattr(m, "shape", ()))
        if found != tuple(shape):
            raise ValueError(f"{name} must have shape (num_query, num_gallery) = {tuple(shape)}, "
                             f"found {found}")
        self.name = name
        self.m = m.tocsr() if sp.issparse(m) else m

    def rows(self, start, stop):
        if hasattr(self.m, "rows"):
            return np.asarray(self.m.rows(start, stop))
        block = self.m[start:stop]
        return block.toarray() if sp.issparse(block) else block


class AuxTerms:
    """TOC / SCP / STS terms for query rows (see the module docstring for the formulas).

    Args:
        num_query, num_gallery: expected matrix shape (checked for every given matrix).
        overlap: TOC matrix, boolean-like (non-zero = the pair cannot match); None = off.
        same_camera: SCP matrix S (0/1) or a :class:`CameraMatch`; None = off.
        plausibility: STS matrix P in [0, 1]; None = off.
        cce_lambda: SCP weight ``lambda_c``.
        str_lambda, str_gamma: STS ``lambda_s`` and ``gamma``.
        overlap_penalty: ``inf`` (default) sets blocked pairs to +inf; a finite value adds it.
    """

    def __init__(self, num_query, num_gallery, overlap=None, same_camera=None, plausibility=None,
                 cce_lambda=0.006, str_lambda=0.6, str_gamma=8.0, overlap_penalty=math.inf):
        shape = (int(num_query), int(num_gallery))
        self.shape = shape
        self.toc = None if overlap is None else _RowSource("overlap (TOC)", overlap, shape)
        self.scp = None if same_camera is None else _RowSource("same_camera (SCP)", same_camera,
                                                               shape)
        self.sts = None if plausibility is None else _RowSource("plausibility (STS)",
                                                                plausibility, shape)
        self.cce_lambda, self.str_lambda = float(cce_lambda), float(str_lambda)
        self.str_gamma, self.penalty = float(str_gamma), float(overlap_penalty)
        if not self.penalty > 0:
            raise ValueError(f"overlap_penalty must be > 0, got {overlap_penalty}")
        if self.sts is not None and isinstance(self.sts.m, np.ndarray):
            p = self.sts.m
            if p.size and (np.isnan(p).any() or p.min() < 0 or p.max() > 1):
                logger.warning("STS plausibility has values outside [0, 1] (min %s, max %s)",
                               np.nanmin(p), np.nanmax(p))

    @property
    def active(self):
        """Names of the enabled terms, in application order."""
        return [n for n, t in (("TOC", self.toc), ("SCP", self.scp), ("STS", self.sts)) if t]

    def apply(self, dist, start):
        """Apply the terms in place to ``dist`` = rows ``start : start + len(dist)``; returns it."""
        if dist.shape[1] != self.shape[1] or start < 0 or start + dist.shape[0] > self.shape[0]:
            raise ValueError(f"distance rows {start}:{start + dist.shape[0]} x {dist.shape[1]} do "
                             f"not fit the auxiliary matrices of shape {self.shape}")
        stop = start + dist.shape[0]
        if self.toc is not None:
            apply_toc(dist, self.toc.rows(start, stop), self.penalty)
        if self.scp is not None:
            apply_scp(dist, self.scp.rows(start, stop), self.cce_lambda)
        if self.sts is not None:
            apply_sts(dist, self.sts.rows(start, stop), self.str_lambda, self.str_gamma)
        return dist


def _row_offset(chunk, base):
    """Row index of ``chunk`` (a row slice ``base[s:e]``, as ``evaluate_features`` passes) in
    ``base``, from the memory layout: numpy arrays and torch tensors sharing storage."""
    if chunk is base:
        return 0
    n = int(chunk.shape[0])
    if hasattr(chunk, "storage_offset") and hasattr(base, "storage_offset"):
        same = (chunk.untyped_storage().data_ptr() == base.untyped_storage().data_ptr()
                and tuple(chunk.stride()[1:]) == tuple(base.stride()[1:]))
        diff, step = chunk.storage_offset() - base.storage_offset(), base.stride(0)
    elif isinstance(chunk, np.ndarray) and isinstance(base, np.ndarray):
        same = chunk.strides[1:] == base.strides[1:] and np.may_share_memory(chunk, base)
        diff = chunk.__array_interface__["data"][0] - base.__array_interface__["data"][0]
        step = base.strides[0]
    else:
        same, diff, step = False, 0, 0
    if same and tuple(chunk.shape[1:]) == tuple(base.shape[1:]) and step > 0 and diff % step == 0:
        start = diff // step
        if 0 <= start and start + n <= base.shape[0]:
            return int(start)
    raise ValueError("ChunkedDistance used as dist_fn must get row slices qf[s:e] of the query "
                     "features it was built with (as evaluate_features passes them); use "
                     ".rows(start, stop) for other access")


class ChunkedDistance:
    """Lazy Q x G test distance: ``aux(base(q, g))`` computed for query row blocks.

    ``base`` is None (the feature metric: squared Euclidean ``|q|^2 + |g|^2 - 2 q.g`` or
    ``1 - cos``) or any object with ``rows(start, stop)`` (e.g. a ``ReRankedDistance``).

    Use as ``evaluate_features(qf, gf, ..., dist_fn=cd)`` with the same ``qf``/``gf``, or as
    ``evaluate_rank(cd, ...)`` (it has ``shape``, ``dtype`` and row slicing ``cd[s:e]``).
    """

    def __init__(self, qf, gf, metric="euclidean", base=None, aux=None):
        if metric not in ("euclidean", "cosine"):
            raise ValueError(f"metric must be 'euclidean' or 'cosine', got {metric!r}")
        self.qf, self.gf, self.metric, self.base, self.aux = qf, gf, metric, base, aux
        self.shape = (int(qf.shape[0]), int(gf.shape[0]))
        if base is not None and tuple(base.shape) != self.shape:
            raise ValueError(f"base distance has shape {tuple(base.shape)}, expected {self.shape}")
        if aux is not None and tuple(aux.shape) != self.shape:
            raise ValueError(f"auxiliary matrices have shape {tuple(aux.shape)}, expected "
                             f"(num_query, num_gallery) = {self.shape}")
        wide = "float64" in (str(qf.dtype), str(gf.dtype)) and base is None
        self.dtype = np.dtype(np.float64 if wide else np.float32)

    def rows(self, start, stop):
        """Dense ``(stop - start, G)`` distances of queries ``start:stop``."""
        start, stop = max(0, int(start)), min(self.shape[0], int(stop))
        if stop <= start:
            return np.zeros((0, self.shape[1]), self.dtype)
        if self.base is not None:
            d = np.array(self.base.rows(start, stop), dtype=self.dtype)
        else:
            _, d = next(_feature_chunks(self.qf[start:stop], self.gf, self.metric, stop - start))
            d = np.asarray(d, dtype=self.dtype)
        if self.aux is not None:
            self.aux.apply(d, start)
        return d

    def __getitem__(self, key):
        if not isinstance(key, slice) or key.step not in (None, 1):
            raise TypeError("ChunkedDistance supports contiguous row slices d[start:stop] only")
        start, stop, _ = key.indices(self.shape[0])
        return self.rows(start, stop)

    def __call__(self, q_chunk, gf=None):
        if gf is not None and gf is not self.gf and tuple(gf.shape) != (self.shape[1],) + tuple(
                self.gf.shape[1:]):
            raise ValueError(f"gallery features of shape {tuple(gf.shape)} do not match "
                             f"{tuple(self.gf.shape)}")
        start = _row_offset(q_chunk, self.qf)
        return self.rows(start, start + int(q_chunk.shape[0]))
