"""DBSCAN on a sparse precomputed distance matrix (unstored entries = far, i.e. > eps).

Semantics are those of ``sklearn.cluster.DBSCAN(eps, min_samples, metric="precomputed")`` applied to
the same sparse matrix (equivalently to the densified matrix with unstored entries set to any value
> eps, e.g. a Jaccard distance of 1 with eps < 1):

* ``N(i) = { j : D_ij stored and D_ij <= eps }``; the diagonal counts as stored (sklearn calls
  ``setdiag(diagonal())``), so i is in N(i) iff ``D_ii <= eps`` (always true for ``D_ii = 0``).
* core points: ``|N(i)| >= min_samples``.
* clusters are discovered from the unlabelled core points in increasing index order; each takes all
  points reachable through core points that are still unlabelled.  Labels are 0..C-1, noise is -1.

Symmetric neighbourhoods (the usual case) are solved in O(nnz) without a Python loop: a cluster is a
connected component of the core-core graph, numbered by its smallest core index, and a border point
takes the smallest label among its core neighbours (the first cluster to reach it).  Asymmetric
neighbourhoods fall back to a frontier-wise BFS that follows sklearn's visiting order exactly.
"""
from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from scipy.sparse.csgraph import connected_components

__all__ = ["dbscan_sparse"]


def _neighbour_graph(dist: sp.csr_matrix, eps: float):
    """Off-diagonal eps-graph (bool CSR, canonical) and the self-neighbour mask.

    Works on the CSR arrays directly: only the (usually few) entries with ``d <= eps`` are expanded.
    """
    n = dist.shape[0]
    step = 1 << 22                                   # scan the data in slices: no nnz-sized mask
    kept = np.concatenate([np.flatnonzero(dist.data[s:s + step] <= eps) + s
                           for s in range(0, dist.data.shape[0], step)] or [np.zeros(0, np.int64)])
    rows = (np.searchsorted(dist.indptr, kept, side="right") - 1).astype(np.int64)
    cols = dist.indices[kept].astype(np.int64)
    off = rows != cols
    rows, cols = rows[off], cols[off]
    counts = np.bincount(rows, minlength=n)
    indptr = np.zeros(n + 1, np.int64)
    np.cumsum(counts, out=indptr[1:])
    graph = sp.csr_matrix((np.ones(rows.shape[0], bool), cols, indptr), shape=(n, n))
    diag = np.asarray(dist.diagonal(), dtype=np.float64)   # unstored -> 0 (sklearn's setdiag)
    return graph, diag <= eps


def _is_symmetric(graph: sp.csr_matrix) -> bool:
    diff = (graph.astype(np.int8) - graph.T.astype(np.int8).tocsr())
    diff.eliminate_zeros()
    return diff.nnz == 0


def _labels_symmetric(graph, core):
    n = graph.shape[0]
    labels = np.full(n, -1, dtype=np.int64)
    core_idx = np.flatnonzero(core)
    if core_idx.size == 0:
        return labels
    cc_graph = graph[core_idx][:, core_idx]
    _, comp = connected_components(cc_graph, directed=False)
    # number components by their smallest core index (= sklearn's discovery order)
    _, first = np.unique(comp, return_index=True)        # core_idx is ascending
    order = np.argsort(first, kind="stable")
    rank = np.empty(order.shape[0], np.int64)
    rank[order] = np.arange(order.shape[0])
    labels[core_idx] = rank[comp]
    # border points: smallest label among core neighbours
    rows = np.repeat(np.arange(n, dtype=np.int64), np.diff(graph.indptr))
    cols = graph.indices
    sel = ~core[rows] & core[cols]
    if np.any(sel):
        best = np.full(n, np.iinfo(np.int64).max, dtype=np.int64)
        np.minimum.at(best, rows[sel], labels[cols[sel]])
        border = best != np.iinfo(np.int64).max
        labels[border] = best[border]
    return labels


def _labels_bfs(graph, core):
    """sklearn's loop, one BFS frontier at a time (valid for directed neighbourhoods)."""
    n = graph.shape[0]
    labels = np.full(n, -1, dtype=np.int64)
    indptr, indices = graph.indptr, graph.indices
    label = 0
    for i in np.flatnonzero(core):
        if labels[i] != -1:
            continue
        labels[i] = label
        frontier = np.array([i])
        while frontier.size:
            starts, ends = indptr[frontier], indptr[frontier + 1]
            lens = ends - starts
            pos = np.arange(int(lens.sum())) + np.repeat(starts - (np.cumsum(lens) - lens), lens)
            nb = np.unique(indices[pos])
            nb = nb[labels[nb] == -1]
            labels[nb] = label
            frontier = nb[core[nb]]
        label += 1
    return labels


def dbscan_sparse(dist: sp.spmatrix, eps: float, min_samples: int = 4, return_core: bool = False):
    """DBSCAN labels (int64, noise = -1) for a sparse precomputed distance matrix.

    Identical to ``sklearn.cluster.DBSCAN(eps=eps, min_samples=min_samples,
    metric="precomputed").fit_predict(dist)``; unstored entries are treated as > eps.
    With ``return_core``: ``(labels, core)``, ``core`` the boolean mask of the core samples.
    """
    if not sp.issparse(dist):
        raise TypeError("dbscan_sparse expects a scipy.sparse matrix")
    if dist.shape[0] != dist.shape[1]:
        raise ValueError(f"distance matrix must be square, got {dist.shape}")
    dist = dist.tocsr()
    if not dist.has_canonical_format:
        dist = dist.copy()
        dist.sum_duplicates()
    n = dist.shape[0]
    if n == 0:
        labels, core = np.zeros(0, dtype=np.int64), np.zeros(0, dtype=bool)
    else:
        graph, self_nb = _neighbour_graph(dist, float(eps))
        degree = np.diff(graph.indptr) + self_nb
        core = degree >= int(min_samples)
        labels = _labels_symmetric(graph, core) if _is_symmetric(graph) else _labels_bfs(graph, core)
    return (labels, core) if return_core else labels
