"""Tracklet metadata for the auxiliary information, and TOC mining.

Metadata per tracklet (:class:`TrackletMeta`, from ``Sample``): a key (the last three path
components of the first frame and the frame count, stable when the dataset folder moves), the
camera id, and the time span ``[start, end]`` = min / max of ``Sample.timestamps`` (world frames;
NaN when the layout has no time, e.g. MARS).

**TOC** (:func:`overlap_matrix`): tracklets a, b cannot be the same person when ``cam_a == cam_b``
and ``max(s_a, s_b) <= min(e_a, e_b)`` (one person is in one place at a time; two tracks in one
camera at the same time are two people).  Sparse boolean, N x N without the diagonal (training
cannot-links for ICDBSCAN) or Q x G (test).  Vectorised: the overlapping pairs are exactly
``s_a <= s_b <= e_a`` or ``s_b < s_a <= e_b``, two disjoint range queries on the spans sorted by
start.
"""
from __future__ import annotations

import os
from typing import NamedTuple, Optional, Sequence

import numpy as np
import scipy.sparse as sp

__all__ = ["TrackletMeta", "sample_key", "overlap_matrix"]


def sample_key(sample) -> str:
    parts = os.path.normpath(str(sample.frames[0])).replace("\\", "/").split("/")[-3:]
    return "/".join(parts) + f"#{len(sample.frames)}"


class TrackletMeta(NamedTuple):
    keys: np.ndarray      # str
    camids: np.ndarray    # int64
    start: np.ndarray     # float64 world frames, NaN = unknown
    end: np.ndarray

    @classmethod
    def from_samples(cls, samples: Sequence) -> "TrackletMeta":
        n = len(samples)
        start, end = np.full(n, np.nan), np.full(n, np.nan)
        for i, s in enumerate(samples):
            if len(s.timestamps):
                ts = np.asarray(s.timestamps, np.float64)
                start[i], end[i] = ts.min(), ts.max()
        keys = np.array([sample_key(s) for s in samples], dtype=str) if n else np.zeros(0, str)
        return cls(keys, np.array([s.camid for s in samples], np.int64).reshape(n), start, end)

    def __len__(self) -> int:
        return int(self.camids.shape[0])

    @property
    def has_time(self) -> bool:
        return bool(len(self)) and bool(np.isfinite(self.start).all())


def _range_pairs(owner_lo, owner_hi):
    """(owner, position) for every position in [lo[o], hi[o]) of every owner o."""
    counts = np.maximum(owner_hi - owner_lo, 0)
    owner = np.repeat(np.arange(counts.shape[0], dtype=np.int64), counts)
    offs = np.arange(int(counts.sum()), dtype=np.int64) - np.repeat(np.cumsum(counts) - counts, counts)
    return owner, np.repeat(owner_lo, counts) + offs


def _overlap_one_way(sa, ea, sb):
    """Pairs (i in a, j in b) with ``s_a <= s_b <= e_a``."""
    order = np.argsort(sb, kind="stable")
    sbs = sb[order]
    lo, hi = np.searchsorted(sbs, sa, "left"), np.searchsorted(sbs, ea, "right")
    i, pos = _range_pairs(lo, hi)
    return i, order[pos]


def overlap_matrix(a: TrackletMeta, b: Optional[TrackletMeta] = None) -> sp.csr_matrix:
    """TOC: boolean CSR, ``[cam_a == cam_b and spans overlap]``; ``b=None``: a x a, no diagonal.
    Tracklets without a time span get no constraint."""
    square = b is None
    b = a if square else b
    rows, cols = [], []
    for cam in np.intersect1d(a.camids, b.camids):
        ia = np.flatnonzero((a.camids == cam) & np.isfinite(a.start))
        ib = np.flatnonzero((b.camids == cam) & np.isfinite(b.start))
        if not ia.size or not ib.size:
            continue
        sa, ea, sb, eb = a.start[ia], a.end[ia], b.start[ib], b.end[ib]
        i1, j1 = _overlap_one_way(sa, ea, sb)                # s_a <= s_b <= e_a
        j2, i2 = _overlap_one_way(sb, eb, sa)                # s_b <= s_a <= e_b ...
        strict = sb[j2] < sa[i2]                             # ... with s_b < s_a (disjoint sets)
        rows += [ia[i1], ia[i2[strict]]]
        cols += [ib[j1], ib[j2[strict]]]
    rows = np.concatenate(rows) if rows else np.zeros(0, np.int64)
    cols = np.concatenate(cols) if cols else np.zeros(0, np.int64)
    if square:
        off = rows != cols
        rows, cols = rows[off], cols[off]
    m = sp.csr_matrix((np.ones(rows.shape[0], bool), (rows, cols)), shape=(len(a), len(b)))
    m.sum_duplicates()
    return m
