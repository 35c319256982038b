"""A lazy query x gallery distance computed in query-row chunks: :class:`ChunkedDistance`
composes a base distance (the feature metric, or a re-ranked distance) with AuxUSLReID's test-time
terms (``auxinfo.test_time.AuxTerms``, applied to each chunk); it is both a ``dist_fn`` for
``evaluate_features`` and a lazy matrix for ``evaluate_rank``, so the Q x G distance is never
materialised.
"""
import numpy as np

from .rank import _feature_chunks

__all__ = ["ChunkedDistance"]


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
