# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True, initializedcheck=False
"""Compiled kernel of the sparse Jaccard distance (``unreidusl.cluster.jaccard``).

For rows i of V' (CSR, columns sorted) and its inverted index (CSC, rows sorted per column):

    m_ij = sum_c min(V'[i, c], V'[j, c])       D_ij = max(0, 1 - m_ij / (2 - m_ij))

accumulated row by row into a dense float64 buffer of N values (only the touched entries are
visited again and reset); the entries kept (``D < 1 and D <= limit``, and the diagonal) are written
out sorted by j (a sort of the kept columns, or a scan of the row's marks when it keeps more than
N / 16).  Same values as the NumPy loop of ``jaccard.py``: the mins are taken in float32, summed
in float64 in the same order (columns c ascending), D is rounded to float32 last.

Every index array is checked before the unchecked loops run.
"""
from libc.stdint cimport int32_t, int64_t
from libc.stdlib cimport calloc, free, malloc, qsort

# Checked by jaccard.py to detect a stale build after a signature change.
JACCARD_CY_API = 1


cdef int _cmp_int32(const void* a, const void* b) noexcept nogil:
    cdef int32_t x = (<const int32_t*> a)[0]
    cdef int32_t y = (<const int32_t*> b)[0]
    return (x > y) - (x < y)


def _check_compressed(const int64_t[::1] ptr, const int32_t[::1] idx, Py_ssize_t n, str what):
    cdef Py_ssize_t k
    if ptr.shape[0] != n + 1 or ptr[0] != 0 or ptr[n] != idx.shape[0]:
        raise ValueError(f"{what}: pointer array of length {ptr.shape[0]} does not describe "
                         f"{n} rows of {idx.shape[0]} entries")
    for k in range(n):
        if ptr[k + 1] < ptr[k]:
            raise ValueError(f"{what}: pointer array decreases at {k}")
    for k in range(idx.shape[0]):
        if idx[k] < 0 or idx[k] >= n:
            raise ValueError(f"{what}: index {idx[k]} outside 0..{n - 1}")


def jaccard_rows(const int64_t[::1] indptr, const int32_t[::1] indices, const float[::1] values,
                 const int64_t[::1] colptr, const int32_t[::1] colrows, const float[::1] colvalues,
                 Py_ssize_t row0, Py_ssize_t row1, double limit,
                 int32_t[::1] out_j, float[::1] out_d, int64_t[::1] counts):
    """Rows row0..row1-1 of D into ``out_j`` / ``out_d`` (``counts``: entries per row); returns
    the number of entries written.  Raises ValueError on inconsistent inputs or a too small
    output."""
    cdef Py_ssize_t n = indptr.shape[0] - 1
    if not (0 <= row0 <= row1 <= n):
        raise ValueError(f"rows {row0}..{row1} outside 0..{n}")
    if values.shape[0] != indices.shape[0] or colvalues.shape[0] != colrows.shape[0]:
        raise ValueError("values and indices differ in length")
    if counts.shape[0] != row1 - row0 or out_d.shape[0] != out_j.shape[0]:
        raise ValueError("output arrays of the wrong length")
    _check_compressed(indptr, indices, n, "V'")
    _check_compressed(colptr, colrows, n, "inverted index of V'")
    cdef double* acc = <double*> calloc(max(n, 1), sizeof(double))
    cdef char* seen = <char*> calloc(max(n, 1), sizeof(char))
    cdef int32_t* touched = <int32_t*> malloc((n + 1) * sizeof(int32_t))  # +1: branch-free writes
    if acc == NULL or seen == NULL or touched == NULL:
        free(acc)
        free(seen)
        free(touched)
        raise MemoryError()
    cdef Py_ssize_t cap = out_j.shape[0], size = 0, i, p, q, t, cnt, kept
    cdef int32_t c, j
    cdef float vi, w, dist
    cdef double m, d
    cdef bint overflow = False
    with nogil:
        for i in range(row0, row1):
            cnt = 0
            for p in range(indptr[i], indptr[i + 1]):
                c = indices[p]
                vi = values[p]
                for q in range(colptr[c], colptr[c + 1]):
                    j = colrows[q]
                    w = colvalues[q]
                    touched[cnt] = j             # branch-free: kept only if j is new
                    cnt += 1 - seen[j]
                    seen[j] = 1
                    acc[j] += <double> (vi if vi < w else w)
            if not seen[i]:
                seen[i] = 1
                touched[cnt] = <int32_t> i
                cnt += 1
            kept = 0
            for t in range(cnt):             # D of every touched j; acc[j] holds it if kept
                j = touched[t]
                m = acc[j]
                d = 1.0 - m / (2.0 - m)
                dist = <float> (d if d > 0.0 else 0.0)
                if j == i:
                    dist = 0.0
                elif not (dist < 1.0 and dist <= limit):
                    acc[j] = 0.0
                    seen[j] = 0
                    continue
                acc[j] = dist
                touched[kept] = j
                kept += 1
            if size + kept > cap:
                overflow = True
                break
            if kept * 16 > n:                # a long row: scan the marks in column order
                t = 0
                for q in range(n):
                    if seen[q]:
                        touched[t] = <int32_t> q
                        t += 1
            else:
                qsort(touched, kept, sizeof(int32_t), _cmp_int32)
            for t in range(kept):
                j = touched[t]
                out_j[size] = j
                out_d[size] = <float> acc[j]
                acc[j] = 0.0
                seen[j] = 0
                size += 1
            counts[i - row0] = kept
    free(acc)
    free(seen)
    free(touched)
    if overflow:
        raise ValueError(f"output arrays too small ({cap} entries)")
    return size
