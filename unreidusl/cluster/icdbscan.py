"""ICDBSCAN: DBSCAN with cannot-link constraints (AuxUSLReID's training TOC).

Inputs: a distance D (N x N; scipy sparse with *unstored = ``fill`` = 1*, i.e. farther than any
eps < 1, as the sparse Jaccard distance stores only D < 1; or dense), ``eps``, ``min_samples``,
cannot-link sets ``CL[i]`` (a sparse boolean N x N matrix, non-zero = constraint, or a sequence /
dict of N integer collections, e.g. the original ``cannotlink_pts.pickle``), relaxation ``r``.

1. ``N(i) = {j : D_ij <= eps} U {i}`` (sparse: stored entries <= eps, plus i itself).
2. Relaxation, on a copy (the inputs are never modified):
   r >= 0 drops j from CL[i] when ``D_ij <= r * eps``; r < 0 drops j when ``D_ij > |r| * eps``
   (only constraints between pairs closer than |r| eps remain).
3. Points p = 0, 1, ..., N-1 in ascending order; for each unassigned p: ``cannot = copy(CL[p])``,
   seeds = [p].  Take seeds first-in first-out; for a seed q let ``cand = N(q) - CL[q] - cannot``.
   If ``|cand| >= min_samples``, walk cand in ascending index order and assign every u that is
   unassigned and (still) not in ``cannot``: ``label[u] = c``, ``cannot |= CL[u]``, u joins the seeds.
   A cluster that ends with fewer than ``min_samples`` members is undone (its points become
   unassigned again) and does not consume the id c.
4. Unassigned points are noise (-1); labels are 0..C-1 in discovery order.

The algorithm leaves the seed order and the order inside ``cand`` open; both matter once
constraints accumulate.  ``order="fifo"`` (default) fixes them (FIFO seeds, ascending ``cand``) and
:func:`icdbscan_reference` follows the same order.  Re-queueing a point that was already processed
is a no-op (its ``cand`` can only shrink and every acceptable member is taken at the first pass),
so the result does not depend on that detail.  The constraint sets are copied per call: they cannot
drift across calls.

``order="reference"`` runs AuxUSLReID's released algorithm exactly (:func:`_grow_reference_order`):
Python sets throughout, so the order is CPython's set iteration order; the root's cannot-link set
*is* ``CL[p]`` and grows in place while its cluster grows (also when the cluster is undone), so it
constrains the later clusters of the same call; the relaxation replaces ``CL[i]`` by ``CL[i] - R(i)``
in the caller's list.  Given a list of sets, that list is modified in place, so the changes carry
over to the next call, as in the released code; any other constraint input is converted to a fresh
list first.

Cost: the relaxation and the eps-graph are vectorised over the stored entries; the growth is a
compiled loop (``icdbscan_cy``, built from ``csrc/icdbscan_cy.pyx``) in O(nnz(N) + sum over
accepted u of |CL[u]|) with two stamp arrays (``cannot`` = "stamp == current attempt", ``CL[q]`` =
"stamp == current step"), so nothing is cleared between clusters.  Without the compiled module the
same loop runs in Python (identical labels, a few times slower).
"""
from __future__ import annotations

import logging
from collections import deque

import numpy as np
import scipy.sparse as sp

from ..utils.compiled import CompiledKernel
from .sparse_rows import canonical, pair_values, row_blocks

__all__ = ["cannot_link_matrix", "constraint_sets", "eps_graph", "icdbscan", "icdbscan_reference",
           "compiled_available", "pair_values"]

logger = logging.getLogger(__name__)

# the API number is bumped together with ICDBSCAN_CY_API in csrc/icdbscan_cy.pyx
_KERNEL = CompiledKernel("unreidusl.cluster.icdbscan_cy", "grow", "ICDBSCAN_CY_API", 2,
                         "the Python growth loop", logger)


def compiled_available() -> bool:
    """True when the compiled growth loop can be used."""
    return _KERNEL.available()


def cannot_link_matrix(cannot_link, n: int) -> sp.csr_matrix:
    """Canonical boolean CSR copy (sorted, no duplicates, no stored False) of the constraints.

    Accepts None (no constraint), a scipy sparse / dense N x N matrix, or a sequence / dict
    ``{i: iterable of j}`` of N collections (the format of the original pickle)."""
    if cannot_link is None:
        return sp.csr_matrix((n, n), dtype=bool)
    if sp.issparse(cannot_link) or isinstance(cannot_link, np.ndarray):
        if tuple(cannot_link.shape) != (n, n):
            raise ValueError(f"cannot-link matrix has shape {tuple(cannot_link.shape)}, "
                             f"expected ({n}, {n})")
        m = sp.csr_matrix(cannot_link, copy=True)
        try:  # scipy itself does not range-check the index arrays of a CSR built from them
            m.check_format(full_check=True)
        except ValueError as e:
            raise ValueError(f"cannot-link matrix is malformed: {e}") from None
        m.sum_duplicates()
        m.eliminate_zeros()
        out = sp.csr_matrix((np.ones(m.nnz, bool), m.indices.copy(), m.indptr.copy()),
                            shape=(n, n))
        out.has_sorted_indices = True
        return out
    items = cannot_link.items() if isinstance(cannot_link, dict) else enumerate(cannot_link)
    rows, cols, seen = [], [], 0
    for i, js in items:
        i = int(i)
        if not 0 <= i < n:
            raise ValueError(f"cannot-link sets: point {i} outside 0..{n - 1}")
        js = np.fromiter((int(j) for j in js), dtype=np.int64)
        rows.append(np.full(js.shape[0], i, np.int64))
        cols.append(js)
        seen += 1
    if seen != n:
        raise ValueError(f"cannot-link sets for {seen} points, expected {n}")
    rows = np.concatenate(rows) if rows else np.zeros(0, np.int64)
    cols = np.concatenate(cols) if cols else np.zeros(0, np.int64)
    if cols.size and (cols.min() < 0 or cols.max() >= n):
        raise ValueError(f"cannot-link sets contain indices outside 0..{n - 1}")
    m = sp.csr_matrix((np.ones(rows.shape[0], bool), (rows, cols)), shape=(n, n))
    m.sum_duplicates()
    return m


def eps_graph(dist, eps):
    """CSR pattern of N(i) (indptr int64, indices int32, sorted, self included), built in row
    blocks so that no temporary is as large as the stored entries."""
    n = dist.shape[0]
    counts = np.zeros(n, np.int64)
    parts = []
    if sp.issparse(dist):
        d = canonical(dist)
        blocks = row_blocks(d.indptr)
    else:
        d = np.asarray(dist)
        blocks = row_blocks(np.arange(n + 1, dtype=np.int64) * n)
    for r0, r1 in blocks:
        if sp.issparse(dist):
            e0, e1 = d.indptr[r0], d.indptr[r1]
            local = np.repeat(np.arange(r1 - r0, dtype=np.int64), np.diff(d.indptr[r0:r1 + 1]))
            cols = d.indices[e0:e1].astype(np.int64)
            keep = d.data[e0:e1] <= eps
            local, cols = local[keep], cols[keep]
        else:
            local, cols = np.nonzero(d[r0:r1] <= eps)
        off = cols != local + r0                           # stored diagonal entries are re-added
        keys = local[off] * n + cols[off]                  # sorted (row-major, sorted columns)
        diag = np.arange(r1 - r0, dtype=np.int64) * n + np.arange(r0, r1)
        keys = np.insert(keys, np.searchsorted(keys, diag), diag)
        rows_local, c = np.divmod(keys, n)
        counts[r0:r1] = np.bincount(rows_local, minlength=r1 - r0)
        parts.append(c.astype(np.int32))
    indptr = np.zeros(n + 1, np.int64)
    np.cumsum(counts, out=indptr[1:])
    return indptr, (np.concatenate(parts) if parts else np.zeros(0, np.int32))


def _relaxed(cl, dist, eps, relaxed, fill):
    """Relaxed copy of the constraint CSR (indptr int64, indices int32)."""
    n = cl.shape[0]
    rows = np.repeat(np.arange(n, dtype=np.int64), np.diff(cl.indptr))
    cols = cl.indices.astype(np.int64)
    if cols.size:
        dv = pair_values(dist, rows, cols, fill)
        keep = dv > relaxed * eps if relaxed >= 0 else dv <= -relaxed * eps
        rows, cols = rows[keep], cols[keep]
    indptr = np.zeros(n + 1, np.int64)
    np.cumsum(np.bincount(rows, minlength=n), out=indptr[1:])
    return indptr, cols.astype(np.int32)


def _grow_python(n, nb_ptr, nb_idx, cl_ptr, cl_idx, min_samples):
    """The growth loop of step 3 in Python (same algorithm as the compiled kernel)."""
    nb_ptr, nb_idx = nb_ptr.tolist(), nb_idx.tolist()
    cl_ptr, cl_idx = cl_ptr.tolist(), cl_idx.tolist()
    labels = [-1] * n
    cannot = [0] * n                    # cannot[j] == attempt  <=>  j in `cannot`
    clmark = [0] * n                    # clmark[j] == step     <=>  j in CL[q]
    attempt = step = cid = 0
    for p in range(n):
        if labels[p] >= 0:
            continue
        attempt += 1
        for j in cl_idx[cl_ptr[p]:cl_ptr[p + 1]]:
            cannot[j] = attempt
        queue, members, head = [p], [], 0
        while head < len(queue):
            q = queue[head]
            head += 1
            nbrs = nb_idx[nb_ptr[q]:nb_ptr[q + 1]]
            if len(nbrs) < min_samples:
                continue
            step += 1
            for j in cl_idx[cl_ptr[q]:cl_ptr[q + 1]]:
                clmark[j] = step
            count = 0
            for j in nbrs:
                if clmark[j] != step and cannot[j] != attempt:
                    count += 1
            if count < min_samples:
                continue
            for u in nbrs:
                if labels[u] < 0 and clmark[u] != step and cannot[u] != attempt:
                    labels[u] = cid
                    members.append(u)
                    queue.append(u)
                    for j in cl_idx[cl_ptr[u]:cl_ptr[u + 1]]:
                        cannot[j] = attempt
        if len(members) < min_samples:
            for u in members:
                labels[u] = -1
        else:
            cid += 1
    return np.asarray(labels, dtype=np.int64)


def icdbscan(dist, eps: float, min_samples: int = 4, cannot_link=None, relaxed: float = 0.0,
             fill: float = 1.0, use_compiled: bool = True, order: str = "fifo") -> np.ndarray:
    """ICDBSCAN labels (int64, noise -1); see the module docstring for the exact semantics of
    ``order`` "fifo" (compiled) and "reference" (AuxUSLReID's set-based growth; a list of sets
    given as ``cannot_link`` is modified in place).

    ``fill`` is the value of an unstored entry of a sparse ``dist`` (1 for the Jaccard distance);
    it must exceed ``eps``.  With SCP / STS applied to the stored entries only, the true value of an
    unstored pair is >= 1 (lambda >= 0), so neighbourhoods stay exact for eps < 1 and the relaxation
    for ``|r| * eps < 1``.  Neither ``dist`` nor ``cannot_link`` is modified.
    """
    if dist.ndim != 2 or dist.shape[0] != dist.shape[1]:
        raise ValueError(f"distance matrix must be square, got shape {tuple(dist.shape)}")
    n, eps, min_samples = int(dist.shape[0]), float(eps), int(min_samples)
    if sp.issparse(dist) and not fill > eps:
        raise ValueError(f"eps={eps} must be below the value of unstored entries ({fill}) of a "
                         f"sparse distance")
    if min_samples < 1:
        raise ValueError(f"min_samples must be >= 1, got {min_samples}")
    if order not in ("fifo", "reference"):
        raise ValueError(f"order must be 'fifo' or 'reference', got {order!r}")
    if n == 0:
        return np.zeros(0, np.int64)
    if order == "reference":
        sets = cannot_link if isinstance(cannot_link, list) else constraint_sets(cannot_link, n)
        if len(sets) != n:
            raise ValueError(f"cannot-link sets for {len(sets)} points, expected {n}")
        return _grow_reference_order(dist, eps, min_samples, sets, float(relaxed), fill)
    cl = cannot_link_matrix(cannot_link, n)
    nb_ptr, nb_idx = eps_graph(dist, eps)
    cl_ptr, cl_idx = _relaxed(cl, dist, eps, float(relaxed), fill)
    grow = _KERNEL.get() if use_compiled else None
    if grow is not None:
        return np.asarray(grow(nb_ptr, nb_idx, cl_ptr, cl_idx, min_samples), dtype=np.int64)
    return _grow_python(n, nb_ptr, nb_idx, cl_ptr, cl_idx, min_samples)


def constraint_sets(cannot_link, n: int) -> list:
    """The constraints as a list of N Python sets, each built by inserting its members in
    ascending order (the form ``order="reference"`` works on and modifies)."""
    cl = cannot_link_matrix(cannot_link, n)
    idx = cl.indices.tolist()
    ptr = cl.indptr.tolist()
    return [set(idx[ptr[i]:ptr[i + 1]]) for i in range(n)]


def _offdiag_rows(dist, fill):
    """Off-diagonal entries by row: ``(owner row, column, float32 value)`` arrays in row-major
    ascending order (sparse: the stored entries; unstored ones are ``fill``), plus the number of
    unstored off-diagonal entries per row."""
    n = dist.shape[0]
    if sp.issparse(dist):
        d = canonical(dist)
        rows = np.repeat(np.arange(n, dtype=np.int64), np.diff(d.indptr))
        off = d.indices != rows
        rows = rows[off]
        return rows, d.indices[off], d.data[off].astype(np.float32), (n - 1) - np.bincount(rows, minlength=n)
    dense = np.asarray(dist, dtype=np.float32)
    mask = ~np.eye(n, dtype=bool)
    rows, cols = np.nonzero(mask)
    return rows, cols, dense[mask], np.zeros(n, np.int64)


def _grow_reference_order(dist, eps, min_samples, sets, relaxed, fill):
    """AuxUSLReID's released ICDBSCAN on Python sets (module docstring, ``order="reference"``):

    1. ``N(i)``: a set of the j != i with ``D_ij <= eps`` inserted in ascending order, then i added.
    2. ``R(i)``: likewise from ``D_ij <= r·eps`` (r >= 0) or ``D_ij > |r|·eps`` (r < 0), then i;
       ``CL[i] = CL[i] - R(i)`` (a new set object in the caller's list).  CPython builds a
       difference either by copying ``CL[i]`` and discarding ``R(i)`` (when ``len(CL[i]) >> 2`` >
       ``len(R(i))``) or by inserting the survivors of ``CL[i]`` into a new set in iteration order;
       both are done here with the same set operations, without materialising a large ``R(i)``.
    3. Roots in ascending order (``set(range(N))`` iterates so); an unassigned root p is labelled
       at once, ``cannot`` is ``CL[p]`` itself, seeds = temp = {p}.  While seeds: c = the first
       seed in iteration order; ``cand = N(c) - CL[c] - cannot``; if ``len(cand) >= min_samples``,
       every q of cand (iteration order) that is unassigned and not in ``cannot`` is labelled,
       added to temp and seeds, and ``cannot.update(CL[q])``; then c leaves the seeds.  A cluster
       with fewer than ``min_samples`` members is undone (``CL[p]`` keeps what it gained).
    """
    n = len(sets)
    owner, cols, vals, unstored = _offdiag_rows(dist, fill)
    fill = np.float32(fill)                                   # compared in float32, as the original
    near = vals <= np.float32(eps)
    near_cols = cols[near].tolist()
    near_ptr = np.zeros(n + 1, np.int64)
    np.cumsum(np.bincount(owner[near], minlength=n), out=near_ptr[1:])
    neighbours = []
    for i in range(n):
        s = set(near_cols[near_ptr[i]:near_ptr[i + 1]])       # ascending j != i, then i
        s.add(i)
        neighbours.append(s)
    del near_cols
    # R(i) membership of a distance value, and |R(i)| (which picks CPython's difference strategy)
    threshold = np.float32(abs(relaxed) * eps)
    inside = (lambda v: v <= threshold) if relaxed >= 0 else (lambda v: v > threshold)
    r_size = 1 + np.bincount(owner[inside(vals)], minlength=n) + (unstored if inside(fill) else 0)
    del owner, cols, vals
    rows = np.repeat(np.arange(n, dtype=np.int64), [len(x) for x in sets])
    members = np.fromiter((j for x in sets for j in x), dtype=np.int64, count=rows.shape[0])
    if members.size and (members.min() < 0 or members.max() >= n):
        raise ValueError(f"cannot-link sets contain indices outside 0..{n - 1}")
    drop = (members == rows) | inside(pair_values(dist, rows, members, fill).astype(np.float32))
    removed = [set() for _ in range(n)]
    for i, j in zip(rows[drop].tolist(), members[drop].tolist()):
        removed[i].add(j)
    for i in range(n):
        old = sets[i]
        if (len(old) >> 2) > int(r_size[i]):               # CPython: copy, then discard R(i)
            new = old.copy()
            new.difference_update(removed[i])
        else:                                              # CPython: insert the survivors in order
            gone = removed[i]
            new = {j for j in old if j not in gone}
        sets[i] = new
    unassigned = -2
    labels = [unassigned] * n
    cid = 0
    for p in range(n):
        if labels[p] != unassigned:
            continue
        labels[p] = cid
        temp, seeds = {p}, {p}
        cannot = sets[p]
        while seeds:
            c = next(iter(seeds))
            cand = neighbours[c] - sets[c] - cannot
            if len(cand) >= min_samples:
                for q in cand:
                    if labels[q] == unassigned and q not in cannot:
                        labels[q] = cid
                        temp.add(q)
                        cannot.update(sets[q])
                        seeds.add(q)
            seeds.remove(c)
        if len(temp) < min_samples:
            for q in temp:
                labels[q] = unassigned
        else:
            cid += 1
    return np.array([-1 if v == unassigned else v for v in labels], dtype=np.int64)


def icdbscan_reference(dist, eps, min_samples=4, cannot_link=None, relaxed=0.0, fill=1.0):
    """Straightforward pure-Python ICDBSCAN on a dense copy of D (O(N^2) time and memory), written
    from the algorithm's wording with sets; same visiting order as :func:`icdbscan`.  For tests only."""
    n = dist.shape[0]
    if sp.issparse(dist):
        dense = np.full((n, n), float(fill))
        coo = canonical(dist).tocoo()
        dense[coo.row, coo.col] = coo.data
    else:
        dense = np.array(dist, dtype=np.float64)
    rows = [dense[i].tolist() for i in range(n)]
    neighbours = [{j for j in range(n) if rows[i][j] <= eps} | {i} for i in range(n)]
    if cannot_link is None:
        cl = [set() for _ in range(n)]
    elif sp.issparse(cannot_link) or isinstance(cannot_link, np.ndarray):
        m = sp.csr_matrix(cannot_link)
        cl = [{int(j) for j, v in zip(m[i].indices, m[i].data) if v} for i in range(n)]
    else:
        cl = [set(int(j) for j in cannot_link[i]) for i in range(n)]   # copies
    if relaxed >= 0:
        cl = [{j for j in cl[i] if not rows[i][j] <= relaxed * eps} for i in range(n)]
    else:
        cl = [{j for j in cl[i] if not rows[i][j] > -relaxed * eps} for i in range(n)]
    labels = [None] * n
    c = 0
    for p in range(n):
        if labels[p] is not None:
            continue
        cannot = set(cl[p])
        seeds, members = deque([p]), []
        while seeds:
            q = seeds.popleft()
            cand = neighbours[q] - cl[q] - cannot
            if len(cand) >= min_samples:
                for u in sorted(cand):
                    if labels[u] is None and u not in cannot:
                        labels[u] = c
                        members.append(u)
                        cannot |= cl[u]
                        seeds.append(u)
        if len(members) < min_samples:
            for u in members:
                labels[u] = None
        else:
            c += 1
    return np.array([-1 if v is None else v for v in labels], dtype=np.int64)
