"""Camera-pair transit-time plausibility P in [0, 1] for STS (AuxUSLReID's spatio-temporal score).

STS scales a distance by ``1 + lambda * exp(-gamma * P)`` (``terms.py``): pairs whose time
gap is typical for their camera pair (P near 1) keep their distance, atypical ones grow by up to
``1 + lambda``.  The original ships P as a pickle of unknown origin; here it is estimated from the
data (a smoothed histogram of time gaps per camera pair, in the spirit of st-ReID's
spatial-temporal stream).

Time gap of two tracklets a, b with time spans ``[s, e]`` (world frames, inclusive): order them by
start (ties: index order), ``from`` = the earlier one, and

    gap = max(0, s_to - e_from)        (0 when the spans overlap)
    bin = min(floor(gap / bin_size), B - 1)          (the last bin collects every longer gap)

Estimator (:meth:`TransitModel.estimate`), from pairs that the current model deems the same
identity (the trainer uses the eps-neighbour pairs of the current distance that are not
cannot-linked; any labelled pairs work):

1. ``n[f, t, b]`` = number of pairs with ``from`` camera f, ``to`` camera t (directed) in bin b;
   ``B = min(max_bins, floor(max gap / bin_size) + 1 + ceil(3 sigma)) + 1`` (the last bin, for
   longer gaps, lies outside the smoothing kernel of the observed ones).
2. Parzen smoothing over time: ``h = n * g_sigma`` (Gaussian kernel, ``sigma`` bins, zero padding).
3. ``P[f, t, b] = (h[f, t, b] + prior) / (max_b' h[f, t, b'] + prior)``.

The pseudo-count ``prior`` makes P evidence-weighted: a camera pair without observations gets
P = 1 everywhere (no penalty), a few observations give a mild contrast, many give a sharp one;
the most typical gap of every camera pair always has P = 1.  The table is small (C x C x B) and is
saved with :meth:`save` / read with :meth:`load` (``.npz``); P of any pair, train or test, is
evaluated from the two tracklets' cameras and spans.
"""
from __future__ import annotations

import os

import numpy as np
from scipy.ndimage import gaussian_filter1d

from ..utils.safe_npz import InvalidFileError, read_npz, require, require_scalar

__all__ = ["TransitModel", "TransitPlausibility", "pair_gaps"]


def pair_gaps(cam_a, start_a, end_a, cam_b, start_b, end_b):
    """``(from camera, to camera, gap)`` of pairs (a_k, b_k) given as aligned arrays."""
    cam_a, cam_b = np.asarray(cam_a, np.int64), np.asarray(cam_b, np.int64)
    start_a, start_b = np.asarray(start_a, np.float64), np.asarray(start_b, np.float64)
    end_a, end_b = np.asarray(end_a, np.float64), np.asarray(end_b, np.float64)
    a_first = start_a <= start_b
    cam_f = np.where(a_first, cam_a, cam_b)
    cam_t = np.where(a_first, cam_b, cam_a)
    gap = np.where(a_first, start_b - end_a, start_a - end_b)
    return cam_f, cam_t, np.maximum(gap, 0.0)


class TransitModel:
    """Plausibility table ``P[from camera, to camera, time bin]`` (see the module docstring)."""

    def __init__(self, table, bin_size: float) -> None:
        table = np.asarray(table, dtype=np.float32)
        if table.ndim != 3 or table.shape[0] != table.shape[1] or table.shape[2] < 1:
            raise ValueError(f"transit table must be C x C x B, got shape {table.shape}")
        if not np.isfinite(table).all() or table.min() < 0 or table.max() > 1:
            raise ValueError("transit table values must be finite and in [0, 1]")
        if not (np.isfinite(bin_size) and bin_size > 0):
            raise ValueError(f"bin_size must be finite and > 0, got {bin_size}")
        self.table, self.bin_size = table, float(bin_size)

    @classmethod
    def from_arrays(cls, path: str, table: np.ndarray, bin_size: float, fix: str) -> "TransitModel":
        """A model from arrays read out of ``path``: :class:`InvalidFileError` naming the file
        instead of the constructor's ValueError."""
        if table.dtype.kind not in "iuf":
            raise InvalidFileError(f"{path}: transit_table must be numeric, found dtype "
                                   f"{table.dtype}: {fix}")
        try:
            return cls(table, bin_size)
        except ValueError as e:
            raise InvalidFileError(f"{path}: {e}: {fix}") from None

    @property
    def num_cams(self) -> int:
        return self.table.shape[0]

    @classmethod
    def estimate(cls, meta, rows, cols, num_cams=None, bin_size: float = 50.0,
                 sigma: float = 1.0, prior: float = 1.0, max_bins: int = 2048) -> "TransitModel":
        """Histogram estimate from pairs ``(rows[k], cols[k])`` of tracklets in ``meta``
        (a ``TrackletMeta``: ``camids``, ``start``, ``end``); pairs with unknown times are skipped."""
        rows, cols = np.asarray(rows, np.int64), np.asarray(cols, np.int64)
        c = int(num_cams if num_cams is not None else int(meta.camids.max(initial=-1)) + 1)
        if c < 1:
            raise ValueError("transit model needs at least one camera")
        f, t, gap = pair_gaps(meta.camids[rows], meta.start[rows], meta.end[rows],
                              meta.camids[cols], meta.start[cols], meta.end[cols])
        ok = np.isfinite(gap) & (f >= 0) & (t >= 0) & (f < c) & (t < c)
        f, t, gap = f[ok], t[ok], gap[ok]
        top = float(gap.max()) if gap.size else 0.0
        pad = int(np.ceil(3 * sigma)) if sigma > 0 else 0   # keep the overflow bin out of the kernel
        nb = min(int(max_bins), int(top // bin_size) + 1 + pad) + 1
        b = np.minimum((gap // bin_size).astype(np.int64), nb - 1)
        counts = np.bincount((f * c + t) * nb + b, minlength=c * c * nb).astype(np.float64)
        counts = counts.reshape(c, c, nb)
        if sigma > 0:
            counts = gaussian_filter1d(counts, float(sigma), axis=2, mode="constant")
        table = (counts + prior) / (counts.max(axis=2, keepdims=True) + prior)
        return cls(table, bin_size)

    def plausibility(self, cam_a, start_a, end_a, cam_b, start_b, end_b) -> np.ndarray:
        """P of aligned pairs (float64).  Unknown times or cameras outside the table give 1."""
        f, t, gap = pair_gaps(cam_a, start_a, end_a, cam_b, start_b, end_b)
        c, nb = self.num_cams, self.table.shape[2]
        known = np.isfinite(gap) & (f >= 0) & (t >= 0) & (f < c) & (t < c)
        out = np.ones(np.shape(gap), np.float64)
        b = np.minimum(np.where(known, gap, 0.0) // self.bin_size, nb - 1).astype(np.int64)
        out[known] = self.table[f[known], t[known], b[known]]
        return out

    def pairs(self, meta_a, rows, meta_b, cols) -> np.ndarray:
        """P of the pairs (``meta_a[rows[k]]``, ``meta_b[cols[k]]``)."""
        return self.plausibility(meta_a.camids[rows], meta_a.start[rows], meta_a.end[rows],
                                 meta_b.camids[cols], meta_b.start[cols], meta_b.end[cols])

    def save(self, path: str) -> None:
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        np.savez_compressed(path, transit_table=self.table, transit_bin=np.float64(self.bin_size))

    @classmethod
    def load(cls, path: str) -> "TransitModel":
        """Read a file written by :meth:`save`, validated (:class:`InvalidFileError` names it)."""
        fix = "delete it (the next training epoch estimates it again from the pseudo-labels)"
        z = read_npz(path, "transit model file", fix)
        require(z, path, ("transit_table", "transit_bin"), fix)
        return cls.from_arrays(path, z["transit_table"], require_scalar(z, path, "transit_bin", fix),
                               fix)


class TransitPlausibility:
    """Lazy Q x G matrix ``P[q, g]`` (``shape`` and ``rows(start, stop)``), usable as the
    ``plausibility`` of ``test_time.AuxTerms`` / ``ReidEvaluator``."""

    def __init__(self, model: TransitModel, query_meta, gallery_meta) -> None:
        self.model, self.q, self.g = model, query_meta, gallery_meta
        self.shape = (len(query_meta), len(gallery_meta))

    def rows(self, start, stop) -> np.ndarray:
        q = np.arange(int(start), int(stop))
        g = np.arange(self.shape[1])
        qq, gg = np.repeat(q, g.shape[0]), np.tile(g, q.shape[0])
        return self.model.pairs(self.q, qq, self.g, gg).reshape(q.shape[0], g.shape[0])
