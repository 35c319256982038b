"""Adaptive DBSCAN radius (AuxUSLReID ``CLUSTER.ADAPTIVE``).

Let ``U = {D_ij : i < j, D_ij > ZERO_TOL}`` be the non-zero strictly-upper-triangular entries of the
(modified) distance, ``M = |U|`` and ``k = max(1, round(rho * M))``.  Then

    eps = mean of the k smallest values of U.

True zeros are excluded as in the original (``np.nonzero`` of ``np.triu(D, 1)``), and so are values
up to ``ZERO_TOL`` (1e-6): the rounding noise of an exact zero (a Jaccard pair whose query-expanded
rows are equal), which the original counts or not depending on how its float32 sums round. rho was
hard-coded to 1.6e-3 there and is ``CLUSTER.ADAPTIVE_RHO`` here.

Sparse D (unstored = ``fill`` = 1, the Jaccard convention): U is the multiset of the stored
non-zero upper entries plus ``N(N-1)/2 - (stored upper entries)`` copies of ``fill``; the k smallest
are found with ``np.partition`` on the stored values and a count of the implicit ones, so the result
equals the dense computation without building N x N.  With SCP / STS applied only to the stored
entries, the dense value of an unstored pair would be >= 1 instead of exactly 1; the result is still
exact whenever the k smallest values are all below 1 (always in practice: k is ~0.16 % of all pairs,
far fewer than the stored pairs below 1); otherwise a warning says so.

:class:`AdaptiveEps` adds the policy: recomputed at every clustering, or frozen after the first
(``CLUSTER.EPS_FROZEN``, the original behaviour); its value is saved in checkpoints so that a resumed
run uses the same eps as an uninterrupted one.
"""
from __future__ import annotations

import logging

import numpy as np
import scipy.sparse as sp

from .sparse_rows import canonical, row_blocks

__all__ = ["AdaptiveEps", "adaptive_eps"]

logger = logging.getLogger(__name__)

ZERO_TOL = 1e-6  # distances up to this count as zeros (module docstring)


def _upper_values(dist):
    """Stored non-zero values with i < j (input dtype) and the number of stored upper entries
    (sparse: row blocks, no nnz-sized temporaries besides the selected values)."""
    if sp.issparse(dist):
        d = canonical(dist)
        parts, stored = [], 0
        for r0, r1 in row_blocks(d.indptr):
            e0, e1 = d.indptr[r0], d.indptr[r1]
            rows = np.repeat(np.arange(r0, r1), np.diff(d.indptr[r0:r1 + 1]))
            upper = d.indices[e0:e1] > rows
            vals = d.data[e0:e1][upper]
            stored += int(upper.sum())
            parts.append(vals[vals > ZERO_TOL])
        return (np.concatenate(parts) if parts else np.zeros(0, d.dtype)), stored
    d = np.asarray(dist)
    n = d.shape[0]
    parts = []
    for i in range(n - 1):
        row = d[i, i + 1:]
        parts.append(row[row > ZERO_TOL])
    vals = np.concatenate(parts) if parts else np.zeros(0)
    return vals, n * (n - 1) // 2


def _sum_smallest(v, k):
    if k <= 0:
        return 0.0
    if k >= v.shape[0]:
        return float(v.sum(dtype=np.float64))
    return float(np.partition(v, k - 1)[:k].sum(dtype=np.float64))


def adaptive_eps(dist, rho: float = 1.6e-3, fill: float = 1.0) -> float:
    """Mean of the smallest ``round(rho * M)`` non-zero upper-triangular distances (see module)."""
    n = dist.shape[0]
    if dist.ndim != 2 or n != dist.shape[1]:
        raise ValueError(f"distance matrix must be square, got shape {tuple(dist.shape)}")
    if not 0 < rho <= 1:
        raise ValueError(f"rho must be in (0, 1], got {rho}")
    vals, stored_upper = _upper_values(dist)
    implicit = n * (n - 1) // 2 - stored_upper if sp.issparse(dist) else 0
    if fill == 0:
        implicit = 0                                   # implicit zeros are excluded like true zeros
    total = vals.shape[0] + implicit
    if total == 0:
        raise ValueError("adaptive eps needs at least one non-zero off-diagonal distance")
    k = max(1, int(round(rho * total)))
    low = vals[vals < fill]
    if k <= low.shape[0]:
        return _sum_smallest(low, k) / k
    n_fill = implicit + int(np.count_nonzero(vals == fill))
    high = vals[vals > fill]
    s = float(low.sum(dtype=np.float64)) + min(k - low.shape[0], n_fill) * float(fill)
    s += _sum_smallest(high, k - low.shape[0] - n_fill)
    if implicit and sp.issparse(dist):
        logger.warning("Adaptive eps: the %d smallest distances (rho=%g) include unstored pairs, "
                       "counted as %s: exact for an unmodified sparse distance, a lower bound "
                       "after SCP / STS (eps >= 1 is unusual: check rho)", k, rho, fill)
    return s / k


class AdaptiveEps:
    """eps policy: ``adaptive_eps(D, rho)`` at each call, or only at the first when ``frozen``."""

    def __init__(self, rho: float = 1.6e-3, frozen: bool = True, fill: float = 1.0) -> None:
        self.rho, self.frozen, self.fill = float(rho), bool(frozen), float(fill)
        self.value = None

    def __call__(self, dist) -> float:
        if self.frozen and self.value is not None:
            return self.value
        self.value = float(adaptive_eps(dist, self.rho, self.fill))
        return self.value

    def state_dict(self) -> dict:
        return {} if self.value is None else {"eps": self.value}

    def load_state_dict(self, state: dict) -> None:
        if "eps" in state:
            self.value = float(state["eps"])
