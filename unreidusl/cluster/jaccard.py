"""k-reciprocal Jaccard distance (Cluster Contrast's ``compute_jaccard_distance``), sparse.

Definitions (``rank`` = kNN index matrix with K = ``search_k`` columns, default ``k1``, self
normally in column 0):

* ``R(i, k) = { j in rank[i, :min(k+1, K)] : i in rank[j, :min(k+1, K)] }``.  With K = k1 the set
  R(i, k1) uses k1 columns, self included (the off-by-one of Cluster Contrast, kept on purpose).
* ``R*(i) = R(i, k1) U { R(c, h) : c in R(i, k1), |R(c, h) & R(i, k1)| > 2/3 |R(c, h)| }``,
  ``h = round(k1 / 2)`` (numpy rounding, as the original).
* ``V[i, j] = exp(-d_ij) / sum_{j' in R*(i)} exp(-d_ij')`` for j in R*(i), else 0, with
  ``d_ij = ||x_i - x_j||^2`` (``encode_dist="sqeuclidean"``, = 2 - 2 cos for unit vectors) or
  ``d_ij = 2 - 2 <x_i, x_j>`` (``encode_dist="dot"``: the original formula applied to raw features).
* Local query expansion when ``k2 != 1``: ``V'[i] = mean_{j in rank[i, :k2]} V[j]``.
* ``m_ij = sum_c min(V'[i, c], V'[j, c])``, ``D_ij = max(0, 1 - m_ij / (2 - m_ij))``, ``D_ii = 0``.
  A pair whose query-expanded rows are equal has exact distance 0; float rounding of the row sums
  leaves ~1e-8 there (the adaptive eps counts such values as zeros, ``eps.ZERO_TOL``).

D < 1 only where rows i and j of V' share support, so the result is an N x N CSR matrix storing
exactly the pairs with ``D < 1`` (explicit zeros included: the diagonal, identical rows); an
unstored entry means D = 1.  Memory is O(N * nnz_row) and no N x N dense array is built:

* reciprocity is a sorted-key membership test on the kNN graph, the expansion two sparse products
  (``R1 @ R2.T`` gives every overlap count, ``S @ R2`` unions the accepted sets);
* V and the query expansion (``Q @ V``, Q = k2-row averaging operator) are sparse;
* ``m`` is accumulated through the inverted index (CSC of V'): for a chunk of rows, every stored
  ``(i, c)`` is expanded against the column list of ``c`` and ``min`` values are scatter-added
  into a small ``rows x N`` buffer that stays in cache.  Cost: ``sum_c nnz(column c)^2``
  scatter-adds.  V' entries enter the mins rounded to float32 (the original keeps V in float32)
  and are summed in float64; D agrees with a float64 evaluation to ~1e-7.
"""
from __future__ import annotations

import logging
import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import scipy.sparse as sp

from ..utils.compiled import CompiledKernel
from ..utils.progress import progress
from .knn import _is_torch, knn_search

__all__ = ["jaccard_distance", "jaccard_distance_dense_reference", "reciprocal_sets"]

_ACC_ELEMS = 1 << 19  # scatter buffer size (float64 elements): a few MB, cache resident
_KERNEL_ROWS = 2048   # rows per call of the compiled kernel (progress granularity)
_KERNEL = CompiledKernel("unreidusl.cluster.jaccard_cy", "jaccard_rows", "JACCARD_CY_API", 1,
                         "the NumPy Jaccard loop", logging.getLogger(__name__))


def _pattern(indptr, indices, n):
    return sp.csr_matrix((np.ones(indices.shape[0], np.int32), indices, indptr), shape=(n, n))


def reciprocal_sets(rank: np.ndarray, width: int) -> sp.csr_matrix:
    """0/1 CSR of ``R(i, width - 1)``: j in ``rank[i, :width]`` and i in ``rank[j, :width]``."""
    n = rank.shape[0]
    width = min(width, rank.shape[1])
    cols = np.sort(rank[:, :width], axis=1).astype(np.int64)
    rows = np.repeat(np.arange(n, dtype=np.int64), width)
    keys = rows * n + cols.ravel()            # sorted: rows ascending, columns sorted per row
    rev = cols.ravel() * n + rows
    pos = np.minimum(np.searchsorted(keys, rev), keys.shape[0] - 1)
    keep = keys[pos] == rev
    counts = keep.reshape(n, width).sum(1)
    indptr = np.zeros(n + 1, np.int64)
    np.cumsum(counts, out=indptr[1:])
    return _pattern(indptr, cols.ravel()[keep].astype(np.int32), n)


def _expanded_sets(rank: np.ndarray, k1: int) -> sp.csr_matrix:
    """0/1 CSR matrix of R*(i)."""
    n = rank.shape[0]
    r1 = reciprocal_sets(rank, k1 + 1)
    r2 = reciprocal_sets(rank, int(np.around(k1 / 2.0)) + 1)
    size2 = np.diff(r2.indptr).astype(np.float64)
    r2t = r2.T.tocsr()
    sel_rows, sel_cols = [], []
    step = 4096                                         # bounds the product's memory
    for s in range(0, n, step):
        blk = r1[s:s + step]
        overlap = (blk @ r2t).multiply(blk).tocsr()     # |R(c,h) & R(i,k1)| at c in R(i,k1)
        overlap.eliminate_zeros()
        accept = overlap.data > (2.0 / 3.0) * size2[overlap.indices]
        sel_rows.append(s + np.repeat(np.arange(blk.shape[0]), np.diff(overlap.indptr))[accept])
        sel_cols.append(overlap.indices[accept])
    rows = np.concatenate(sel_rows)
    sel = sp.csr_matrix((np.ones(rows.shape[0], np.int32), (rows, np.concatenate(sel_cols))),
                        shape=(n, n))
    expanded = (r1 + sel @ r2).tocsr()
    expanded.sum_duplicates()
    expanded.data[:] = 1
    return expanded


def _pair_dots(x, rows, cols):
    """<x_rows, x_cols> for index pairs, chunked (x: float32 numpy array or torch tensor)."""
    out = np.empty(rows.shape[0], np.float64)
    chunk = max(1, (1 << 21) // max(1, int(x.shape[1])))     # ~8 MB per gathered block
    for s in range(0, rows.shape[0], chunk):
        r, c = rows[s:s + chunk], cols[s:s + chunk]
        if _is_torch(x):
            import torch
            ri = torch.from_numpy(r.astype(np.int64)).to(x.device)
            ci = torch.from_numpy(c.astype(np.int64)).to(x.device)
            out[s:s + chunk] = (x[ri] * x[ci]).sum(1).double().cpu().numpy()
        else:
            out[s:s + chunk] = np.einsum("ij,ij->i", x[r], x[c])
    return out


def _sqnorms(x):
    if _is_torch(x):
        return (x.float() * x.float()).sum(1).double().cpu().numpy()
    return np.einsum("ij,ij->i", x, x).astype(np.float64)


def _encode(x, expanded, dist2, rank, encode_dist, norm=None):
    """V as CSR float64: row-wise softmax of -d over R*(i) (d divided by ``norm[i]`` if given)."""
    n = rank.shape[0]
    rows = np.repeat(np.arange(n, dtype=np.int64), np.diff(expanded.indptr))
    cols = expanded.indices.astype(np.int64)
    if encode_dist == "dot":
        d = 2.0 - 2.0 * _pair_dots(x, rows, cols)
    elif encode_dist == "sqeuclidean":
        # look the pair up among the kNN results; compute the few pairs that are not there
        order = np.argsort(rank, axis=1, kind="stable")
        kkeys = (np.arange(n, dtype=np.int64)[:, None] * n
                 + np.take_along_axis(rank, order, 1)).ravel()
        kval = np.take_along_axis(dist2, order, 1).ravel().astype(np.float64)
        ekeys = rows * n + cols
        pos = np.minimum(np.searchsorted(kkeys, ekeys), kkeys.shape[0] - 1)
        found = kkeys[pos] == ekeys
        d = np.where(found, kval[pos], 0.0)
        miss = np.flatnonzero(~found & (rows != cols))
        if miss.shape[0]:
            nrm = _sqnorms(x)
            r, c = rows[miss], cols[miss]
            d[miss] = np.maximum(nrm[r] + nrm[c] - 2.0 * _pair_dots(x, r, c), 0.0)
    else:
        raise ValueError(f"encode_dist must be 'sqeuclidean' or 'dot', got {encode_dist!r}")
    if norm is not None:
        d /= norm[rows]
    nonempty = np.flatnonzero(np.diff(expanded.indptr) > 0)
    starts = expanded.indptr[nonempty]
    dmin = np.full(n, 0.0)
    dmin[nonempty] = np.minimum.reduceat(d, starts)
    w = np.exp(-(d - dmin[rows]))
    tot = np.ones(n)
    tot[nonempty] = np.add.reduceat(w, starts)
    w /= tot[rows]
    return sp.csr_matrix((w, expanded.indices, expanded.indptr), shape=(n, n))


def _query_expansion(v, rank, k2):
    n = rank.shape[0]
    q = sp.csr_matrix((np.full(n * k2, 1.0 / k2), rank[:, :k2].ravel(),
                       np.arange(0, n * k2 + 1, k2, dtype=np.int64)), shape=(n, n))
    out = (q @ v).tocsr()
    out.sum_duplicates()
    return out


def _jaccard_from_v(v, max_dist, acc_elems=_ACC_ELEMS, rows=None, desc="Jaccard distance",
                    use_compiled=True):
    """Sparse D from the (query-expanded) V; see module docstring for the method.

    ``rows=(start, stop)`` computes only those rows (a ``(stop - start) x N`` result).  The
    compiled kernel (``csrc/jaccard_cy.pyx``) runs when built and ``use_compiled``; the NumPy loop
    otherwise (same values)."""
    n = v.shape[0]
    row0, row1 = (0, n) if rows is None else (int(rows[0]), int(rows[1]))
    if not 0 <= row0 <= row1 <= n:
        raise ValueError(f"rows must satisfy 0 <= start <= stop <= {n}, got {rows}")
    nr = row1 - row0
    v.eliminate_zeros()
    v.sort_indices()
    vc = v.tocsc()                                       # inverted index, rows ascending per column
    vc.sort_indices()
    indptr = v.indptr.astype(np.int64)
    colptr = vc.indptr.astype(np.int64)
    trip = np.diff(colptr)[v.indices]                    # partners of every stored (i, c)
    # Output buffers sized by an upper bound (triples + diagonal): only the pages written are
    # touched, so the resident size is the real output; the tail is released at the end.
    starts = np.arange(row0, row1, _KERNEL_ROWS)
    stops = np.minimum(starts + _KERNEL_ROWS, row1)
    partners = np.concatenate([[0], np.cumsum(trip)]).astype(np.int64)
    per_chunk = partners[indptr[stops]] - partners[indptr[starts]]
    bounds = np.minimum(per_chunk + (stops - starts), (stops - starts) * n)
    del trip, partners
    offsets = np.concatenate([[0], np.cumsum(bounds)]).astype(np.int64)
    cap = int(offsets[-1])
    out_j = np.empty(cap, np.int32)
    out_d = np.empty(cap, np.float32)
    counts = np.zeros(nr, np.int64)
    limit = 1.0 if max_dist is None else float(max_dist)
    kernel = _KERNEL.get() if use_compiled else None
    bar = progress(total=nr, desc=desc, unit="row")
    if kernel is not None:
        size = _jaccard_rows_compiled(kernel, v, vc, indptr, colptr, starts, stops, offsets,
                                      limit, out_j, out_d, counts, bar)
    else:
        size = _jaccard_rows_numpy(v, vc, indptr, colptr, row0, row1, limit, acc_elems,
                                   out_j, out_d, counts, bar)
    bar.close()
    out_j.resize(size, refcheck=False)                   # shrinking: no copy, tail released
    out_d.resize(size, refcheck=False)
    indptr_out = np.zeros(nr + 1, np.int64)
    np.cumsum(counts, out=indptr_out[1:])
    if size < np.iinfo(np.int32).max:
        indptr_out = indptr_out.astype(np.int32)
    else:
        out_j = out_j.astype(np.int64)
    out = sp.csr_matrix((out_d, out_j, indptr_out), shape=(nr, n), copy=False)
    out.has_sorted_indices = True
    return out


def _jaccard_rows_compiled(kernel, v, vc, indptr, colptr, starts, stops, offsets, limit, out_j,
                           out_d, counts, bar):
    """The compiled kernel on the row chunks ``starts[c]:stops[c]``, in parallel threads (it
    releases the GIL): chunk c writes from ``offsets[c]`` (the prefix sum of the chunks' upper
    bounds), and the pieces are then moved together.  Returns the number of entries written."""
    indices, vals = v.indices.astype(np.int32), v.data.astype(np.float32)
    crow, cval = vc.indices.astype(np.int32), vc.data.astype(np.float32)
    row0 = int(starts[0]) if len(starts) else 0

    def run(c):
        r0, r1, o0, o1 = int(starts[c]), int(stops[c]), int(offsets[c]), int(offsets[c + 1])
        return kernel(indptr, indices, vals, colptr, crow, cval, r0, r1, limit, out_j[o0:o1],
                      out_d[o0:o1], counts[r0 - row0:r1 - row0])

    workers = max(1, min(len(starts), len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity")
                         else os.cpu_count() or 1))
    with ThreadPoolExecutor(max_workers=workers) as pool:
        written = []
        for c, got in enumerate(pool.map(run, range(len(starts)))):
            written.append(got)
            bar.update(int(stops[c] - starts[c]))
    size = 0
    for c, got in enumerate(written):                    # move the pieces together (leftwards)
        o = offsets[c]
        if o != size:
            out_j[size:size + got] = out_j[o:o + got]
            out_d[size:size + got] = out_d[o:o + got]
        size += got
    return size


def _jaccard_rows_numpy(v, vc, indptr, colptr, row0, row1, limit, acc_elems, out_j, out_d,
                        counts, bar):
    """The NumPy loop of ``_jaccard_from_v``: for a chunk of rows, every stored ``(i, c)`` is
    expanded against the column list of ``c`` and the mins are scatter-added into a small
    ``rows x N`` buffer.  Returns the number of entries written."""
    n = v.shape[0]
    rows_per = max(1, min(n, max(16, acc_elems // max(n, 1))))
    itype = np.int32 if max(vc.nnz, rows_per * n) < np.iinfo(np.int32).max else np.int64
    # inverted index packed as (row int32, value float32) pairs: one 8-byte gather per triple.
    # Values are rounded to float32 (as in the original), sums are accumulated in float64.
    packed = np.empty((vc.nnz, 2), np.int32)
    packed[:, 0] = vc.indices
    packed[:, 1] = vc.data.astype(np.float32).view(np.int32)
    packed = packed.view(np.int64).ravel()
    cols, vals = v.indices, v.data.astype(np.float32)
    trip = np.diff(colptr)[cols]
    size = 0
    acc = np.zeros(rows_per * n)
    mark = np.zeros(rows_per * n, bool)
    for r0 in range(row0, row1, rows_per):
        r1 = min(row1, r0 + rows_per)
        e0, e1 = indptr[r0], indptr[r1]
        cn = trip[e0:e1]
        total = int(cn.sum())
        local = np.arange(r1 - r0, dtype=itype) * itype(n)
        if total:
            # partner positions in the inverted index: the whole column list of each (i, c)
            q = np.arange(total, dtype=itype)
            q += np.repeat((colptr[cols[e0:e1]] - (np.cumsum(cn) - cn)).astype(itype), cn)
            partner = np.take(packed, q).view(np.int32)
            del q
            mins = np.repeat(vals[e0:e1], cn)
            np.minimum(mins, partner[1::2].view(np.float32), out=mins)
            key = np.repeat(np.repeat(local, np.diff(indptr[r0:r1 + 1])), cn)
            key += partner[0::2]
            del partner
            np.add.at(acc, key, mins.astype(np.float64))  # m_ij for the chunk's rows
            mark[key] = True
            del key, mins
        mark[local + np.arange(r0, r1, dtype=itype)] = True   # D_ii is always stored
        nz = np.flatnonzero(mark[:(r1 - r0) * n])
        m = acc[nz]
        acc[nz] = 0.0
        mark[nz] = False
        dist = 1.0 - m / (2.0 - m)
        np.maximum(dist, 0.0, out=dist)
        dist = dist.astype(np.float32)
        bounds = np.searchsorted(nz, local)               # nz is sorted: row-major (row, j)
        j = nz - np.repeat(local, np.diff(np.append(bounds, nz.shape[0])))
        is_diag = j == np.repeat(np.arange(r0, r1, dtype=j.dtype),
                                 np.diff(np.append(bounds, nz.shape[0])))
        dist[is_diag] = 0.0
        keep = ((dist < 1.0) & (dist <= limit)) | is_diag
        kept = np.flatnonzero(keep)
        counts[r0 - row0:r1 - row0] = np.diff(
            np.searchsorted(kept, np.append(bounds, nz.shape[0])))
        out_j[size:size + kept.shape[0]] = j[kept]
        out_d[size:size + kept.shape[0]] = dist[kept]
        size += kept.shape[0]
        bar.update(r1 - r0)
    return size


def _columns(n, k1, k2, search_k):
    """kNN columns and effective k2 (both clipped to N)."""
    kcols = int(search_k if search_k is not None else k1)
    if k1 < 1 or k2 < 1:
        raise ValueError("k1 and k2 must be >= 1")
    if k2 > kcols:
        raise ValueError(f"k2={k2} needs at least k2 kNN columns, got search_k={kcols}")
    return min(kcols, n), min(k2, n)


def jaccard_distance(features, k1: int = 30, k2: int = 6, knn_backend: str = "torch",
                     search_k=None, *, encode_dist: str = "sqeuclidean", max_dist=None,
                     knn=None, device=None, encode_norm=None, rows=None,
                     desc: str = "Jaccard distance") -> sp.csr_matrix:
    """k-reciprocal Jaccard distance as an N x N CSR float32 matrix (see module docstring).

    Args:
        features: ``[N, d]`` float32 array / tensor, used as given (callers L2-normalise).
        k1, k2: re-ranking parameters (Cluster Contrast defaults 30 and 6).
        knn_backend: ``knn_search`` backend ("torch", "numpy", "faiss", "auto").
        search_k: kNN columns searched (default ``k1``, Cluster Contrast's off-by-one; ``k1 + 1``
            gives the original re-ranking paper).  Must be ``>= k2``.
        encode_dist: ``"sqeuclidean"`` (default) or ``"dot"`` (``2 - 2<x_i, x_j>``), see above.
        max_dist: if given, also drop entries with ``D > max_dist`` (saves memory before DBSCAN);
            the diagonal is always stored.
        knn: optional precomputed ``(dist2, idx)`` from ``knn_search`` with >= ``search_k`` columns.
        device: torch device for the kNN.
        encode_norm: optional ``[N]`` positive divisors: row i of V uses ``d_ij / encode_norm[i]``
            (the row-max normalisation of the original re-ranking).
        rows: optional ``(start, stop)``: compute only these rows of D (``(stop - start) x N``);
            the sets and V still use all N items.
        desc: the label of the progress bars (kNN and rows; ``utils/progress.py``).

    Returns:
        ``scipy.sparse.csr_matrix`` float32, sorted indices; stored = all pairs with ``D < 1`` (and
        ``<= max_dist``), explicit zeros kept; unstored means ``D = 1``.
    """
    n = int(features.shape[0])
    if n == 0:
        return sp.csr_matrix((0, 0), dtype=np.float32)
    kcols, k2 = _columns(n, k1, k2, search_k)
    if not _is_torch(features):
        features = np.ascontiguousarray(np.asarray(features, dtype=np.float32))
    if knn is None:
        dist2, rank = knn_search(features, k=kcols, backend=knn_backend, device=device,
                                 desc=f"{desc}: kNN")
    else:
        dist2, rank = (np.asarray(a) for a in knn)
        if rank.shape != (n, rank.shape[1]) or rank.shape[1] < kcols or dist2.shape != rank.shape:
            raise ValueError(f"knn must be (dist2, idx) of shape [N, >= {kcols}], got "
                             f"{dist2.shape} and {rank.shape}")
        dist2, rank = dist2[:, :kcols], rank[:, :kcols]
    rank = np.ascontiguousarray(rank, dtype=np.int64)
    expanded = _expanded_sets(rank, k1)
    if encode_norm is not None:
        encode_norm = np.asarray(encode_norm, dtype=np.float64).reshape(-1)
        if encode_norm.shape[0] != n or not np.all(encode_norm > 0):
            raise ValueError(f"encode_norm must hold {n} positive values, got shape "
                             f"{encode_norm.shape}")
    v = _encode(features, expanded, dist2, rank, encode_dist, encode_norm)
    del expanded
    if k2 != 1:
        v = _query_expansion(v, rank, k2)
    return _jaccard_from_v(v, max_dist, rows=rows, desc=desc)


def jaccard_distance_dense_reference(features, k1: int = 30, k2: int = 6, search_k=None,
                                     encode_dist: str = "sqeuclidean", rank=None) -> np.ndarray:
    """Textbook dense / pure-Python version (float64, O(N^2) memory), for tests and benchmarks.

    It follows the original code: dense V and V', an inverted index and a per-row accumulation.
    kNN by a stable argsort of the dense squared distances (ties -> smaller index, self distance 0),
    unless ``rank`` (a kNN index matrix) is given.
    """
    x = np.asarray(features, dtype=np.float64)
    n = x.shape[0]
    kcols, k2 = _columns(n, k1, k2, search_k)
    sq = (x * x).sum(1)
    dist = np.maximum(sq[:, None] + sq[None, :] - 2.0 * (x @ x.T), 0.0)
    np.fill_diagonal(dist, 0.0)
    if rank is None:
        rank = np.argsort(dist, axis=1, kind="stable")[:, :kcols]
    else:
        rank = np.asarray(rank)[:, :kcols]

    def recip(i, k):
        fwd = rank[i, :k + 1]
        return [j for j in fwd if i in rank[j, :k + 1]]

    half = int(np.around(k1 / 2.0))
    enc = dist if encode_dist == "sqeuclidean" else 2.0 - 2.0 * (x @ x.T)
    v = np.zeros((n, n))
    for i in range(n):
        r1 = recip(i, k1)
        exp_set = list(r1)
        for c in r1:
            rc = recip(c, half)
            if len(np.intersect1d(rc, r1)) > 2.0 / 3.0 * len(rc):
                exp_set.extend(rc)
        exp_set = np.unique(np.asarray(exp_set, dtype=np.int64))
        if exp_set.size:
            w = np.exp(-(enc[i, exp_set] - enc[i, exp_set].min()))
            v[i, exp_set] = w / w.sum()
    if k2 != 1:
        v = np.stack([v[rank[i, :k2]].mean(0) for i in range(n)])
    inv_index = [np.flatnonzero(v[:, c]) for c in range(n)]     # inverted index, as the original
    out = np.ones((n, n))
    for i in range(n):
        acc = np.zeros(n)
        for c in np.flatnonzero(v[i]):
            rows = inv_index[c]
            acc[rows] += np.minimum(v[i, c], v[rows, c])
        out[i] = 1.0 - acc / (2.0 - acc)
    out = np.maximum(out, 0.0)
    np.fill_diagonal(out, 0.0)
    return out
