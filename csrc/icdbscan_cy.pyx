# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True, initializedcheck=False
"""Compiled growth loop of ICDBSCAN (``unreidusl.cluster.icdbscan``, step 3 of its docstring).

Inputs are the eps-neighbourhoods ``N(i)`` (CSR: int64 indptr, int32 sorted indices, i included)
and the relaxed cannot-link sets ``CL[i]`` (same layout).  Points are visited in ascending order;
seeds are taken first-in first-out; ``cand = N(q) - CL[q] - cannot`` is walked in ascending order
and every unassigned member not (yet) in ``cannot`` is taken.  Set membership uses stamp arrays:
``cannot[j] == attempt`` and ``clmark[j] == step``, so nothing is cleared between clusters.
Same labels as ``icdbscan._grow_python``.

The kernel runs without bounds checks, so it first checks its inputs itself (O(n + nnz)): both
``indptr`` arrays have n + 1 entries, start at 0, never decrease and end at their index array's
length, and every index lies in ``0 .. n-1``.  Anything else raises ``ValueError`` before a single
write, whatever the caller validated.
"""
import numpy as np

from libc.stdint cimport int32_t, int64_t

# Checked by icdbscan.py to detect a stale build after a signature change.
ICDBSCAN_CY_API = 2


cdef int _check_csr(const int64_t[::1] ptr, const int32_t[::1] idx, Py_ssize_t n) noexcept nogil:
    """0 when ``(ptr, idx)`` is a valid n x n CSR pattern, else a nonzero code."""
    cdef Py_ssize_t i, k
    if ptr.shape[0] != n + 1 or ptr[0] != 0 or ptr[n] != idx.shape[0]:
        return 1
    for i in range(n):
        if ptr[i + 1] < ptr[i]:
            return 2
    for k in range(idx.shape[0]):
        if idx[k] < 0 or idx[k] >= n:
            return 3
    return 0


def _require_csr(const int64_t[::1] ptr, const int32_t[::1] idx, Py_ssize_t n, str what):
    cdef int bad
    with nogil:
        bad = _check_csr(ptr, idx, n)
    if bad:
        raise ValueError(f"icdbscan_cy.grow: malformed {what} CSR (check {bad}): indptr must be n + 1 "
                         f"non-decreasing offsets from 0 to len(indices), indices in 0..n-1")


def grow(const int64_t[::1] nb_ptr, const int32_t[::1] nb_idx, const int64_t[::1] cl_ptr,
         const int32_t[::1] cl_idx, Py_ssize_t min_samples):
    cdef Py_ssize_t n = nb_ptr.shape[0] - 1
    if n < 0:
        raise ValueError("icdbscan_cy.grow: empty neighbourhood indptr")
    if min_samples < 1:
        raise ValueError(f"icdbscan_cy.grow: min_samples must be >= 1, got {min_samples}")
    _require_csr(nb_ptr, nb_idx, n, "neighbourhood")
    _require_csr(cl_ptr, cl_idx, n, "cannot-link")
    labels_arr = np.full(n, -1, dtype=np.int64)
    cannot_arr = np.zeros(n, dtype=np.int64)
    clmark_arr = np.zeros(n, dtype=np.int64)
    queue_arr = np.empty(n + 1, dtype=np.int32)
    members_arr = np.empty(n, dtype=np.int32)
    cdef int64_t[::1] labels = labels_arr
    cdef int64_t[::1] cannot = cannot_arr
    cdef int64_t[::1] clmark = clmark_arr
    cdef int32_t[::1] queue = queue_arr
    cdef int32_t[::1] members = members_arr
    cdef int64_t attempt = 0, step = 0, cid = 0, a, b, k
    cdef Py_ssize_t p, q, u, j, head, tail, nmem, count
    with nogil:
        for p in range(n):
            if labels[p] >= 0:
                continue
            attempt += 1
            for k in range(cl_ptr[p], cl_ptr[p + 1]):
                cannot[cl_idx[k]] = attempt
            queue[0] = <int32_t>p
            head = 0
            tail = 1
            nmem = 0
            while head < tail:
                q = queue[head]
                head += 1
                a = nb_ptr[q]
                b = nb_ptr[q + 1]
                if b - a < min_samples:
                    continue
                step += 1
                for k in range(cl_ptr[q], cl_ptr[q + 1]):
                    clmark[cl_idx[k]] = step
                count = 0
                for k in range(a, b):
                    j = nb_idx[k]
                    if clmark[j] != step and cannot[j] != attempt:
                        count += 1
                if count < min_samples:
                    continue
                for k in range(a, b):
                    u = nb_idx[k]
                    if labels[u] < 0 and clmark[u] != step and cannot[u] != attempt:
                        labels[u] = cid
                        members[nmem] = <int32_t>u
                        nmem += 1
                        queue[tail] = <int32_t>u
                        tail += 1
                        for j in range(cl_ptr[u], cl_ptr[u + 1]):
                            cannot[cl_idx[j]] = attempt
            if nmem < min_samples:
                for k in range(nmem):
                    labels[members[k]] = -1
            else:
                cid += 1
    return labels_arr
