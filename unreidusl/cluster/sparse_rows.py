"""Small helpers for large CSR distance matrices (numpy + scipy only, no nnz-sized temporaries).

* :func:`canonical` - CSR with sorted, unique indices (a copy only when needed);
* :func:`row_blocks` - consecutive row ranges holding at most ``max_entries`` stored entries each,
  so per-entry temporaries (row ids, keys, float64 values) stay a few MB whatever nnz is;
* :func:`lookup` - positions of pairs ``(i, j)`` among the stored entries by a vectorised binary
  search inside each row (``O(P log(row length))`` for P pairs, no global key array).
"""
from __future__ import annotations

import numpy as np
import scipy.sparse as sp

__all__ = ["canonical", "row_blocks", "lookup", "pair_values"]

BLOCK = 1 << 20


def canonical(m) -> sp.csr_matrix:
    m = m.tocsr()
    if not m.has_canonical_format:
        m = m.copy()
        m.sum_duplicates()
    return m


def row_blocks(indptr, max_entries: int = BLOCK):
    """Yield ``(r0, r1)`` covering all rows, each block with <= max_entries entries (or one row)."""
    n = indptr.shape[0] - 1
    r0 = 0
    while r0 < n:
        r1 = int(np.searchsorted(indptr, indptr[r0] + max_entries, side="right")) - 1
        r1 = min(n, max(r1, r0 + 1))
        yield r0, r1
        r0 = r1


def lookup(m: sp.csr_matrix, rows, cols):
    """``(pos, found)``: index into ``m.data`` of each stored pair (canonical ``m``)."""
    rows, cols = np.asarray(rows, np.int64), np.asarray(cols, np.int64)
    lo = m.indptr[rows].astype(np.int64)
    hi = m.indptr[rows + 1].astype(np.int64)
    end = hi.copy()
    while True:
        active = lo < hi
        if not active.any():
            break
        mid = (lo + hi) // 2
        go = active & (m.indices[np.minimum(mid, max(m.indices.shape[0] - 1, 0))] < cols)
        lo = np.where(go, mid + 1, lo)
        hi = np.where(active & ~go, mid, hi)
    found = lo < end
    found[found] = m.indices[lo[found]] == cols[found]
    return lo, found


def pair_values(dist, rows, cols, fill: float = 1.0) -> np.ndarray:
    """``D[rows, cols]`` as float64; for sparse D an unstored pair gives ``fill`` (explicit zeros
    stay 0, unlike scipy's fancy indexing which cannot tell them apart)."""
    rows, cols = np.asarray(rows, np.int64), np.asarray(cols, np.int64)
    if not sp.issparse(dist):
        return np.asarray(dist)[rows, cols].astype(np.float64)
    d = canonical(dist)
    out = np.full(rows.shape[0], float(fill))
    if rows.size and d.nnz:
        pos, found = lookup(d, rows, cols)
        out[found] = d.data[pos[found]]
    return out
