# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True, initializedcheck=False
"""Compiled kernel of the rank evaluator (``unreidusl.evaluation.rank``).

Same signature and semantics as ``rank_numpy.rank_chunk_numpy``. Per query, with the valid
gallery ordered by the key ``(distance, gallery index)`` (stable order, ties by index):

1. collect the P positives (same pid; different camera unless camera-free) and sort their
   keys: O(P log P);
2. count, for each positive key, the items with a smaller key. P <= 64: compress the items
   with ``d <= max positive distance`` (K of them), then one vectorised counting pass per
   positive over them, O(G + P K); P > 64: bin each of those items by a branchless binary
   search over the positive keys, O(G + K log P). Ties (equal distances) are resolved by
   gallery index. Junk items (same pid and camera) are then taken back out;
3. the j-th positive (0-based) gets rank ``r_j`` = 1 + #valid items with a smaller key, so
   ``AP = (1/P) sum_j (j+1)/r_j``, ``INP = P / r_{P-1}``, first-match rank ``= r_0``.

The array lengths, the ``lo``/``hi`` bounds and the ``g_order`` indices are checked before the
unchecked loops run.  No argsort of the row, no Q x G temporaries. Distances are float32 or float64 (fused type, no
casting here: the caller decides the precision for both kernels); ids are int64.
The query loop is a ``prange``: it runs in parallel when compiled with OpenMP, serially
otherwise (results are identical).
"""
from cython.parallel cimport parallel, prange
from libc.stdint cimport int64_t
from libc.stdlib cimport calloc, free, malloc, qsort

# Checked by rank.py to detect a stale build after a signature change.
RANK_CY_API = 1

ctypedef fused real:
    float
    double


cdef struct PosKey:
    double d
    int64_t idx


cdef int _cmp_key(const void* a, const void* b) noexcept nogil:
    cdef const PosKey* x = <const PosKey*> a
    cdef const PosKey* y = <const PosKey*> b
    if x.d < y.d:
        return -1
    if x.d > y.d:
        return 1
    return (x.idx > y.idx) - (x.idx < y.idx)


cdef inline Py_ssize_t _num_before(const double* pd, const int64_t* pidx, Py_ssize_t num_pos,
                                   double d, int64_t g) noexcept nogil:
    """Number of positive keys (pd[j], pidx[j]) that are < (d, g); keys sorted ascending."""
    cdef const double* base = pd
    cdef Py_ssize_t n = num_pos, half, s
    while n > 1:  # branchless lower bound on the distance (compiles to cmov)
        half = n >> 1
        base = base + half if base[half - 1] < d else base
        n -= half
    s = (base - pd) + (base[0] < d)
    while s < num_pos and pd[s] == d and pidx[s] < g:  # ties: order by gallery index
        s += 1
    return s


cdef void _count_below(const real* vals, Py_ssize_t n, real t, int64_t* lt,
                       int64_t* le) noexcept nogil:
    """lt = #{i: vals[i] < t}, le = #{i: vals[i] <= t} (SIMD-friendly, int32 partial sums)."""
    cdef Py_ssize_t start, stop, i
    cdef int a, b
    lt[0] = 0
    le[0] = 0
    for start in range(0, n, 1 << 30):
        stop = min(start + (1 << 30), n)
        a = 0
        b = 0
        for i in range(start, stop):
            a += vals[i] < t
            b += vals[i] <= t
        lt[0] += a
        le[0] += b


cdef int _eval_one(const real* row, Py_ssize_t num_g, int64_t qc, const int64_t* g_cams,
                   const int64_t* same, Py_ssize_t num_same, bint camera_free, real* cand,
                   double* ap, double* inp, int64_t* first, int64_t* npos) noexcept nogil:
    """Evaluate one query (``cand``: scratch of num_g items); returns -1 if out of memory."""
    cdef Py_ssize_t i, j, g, num_pos = 0, num_cand = 0
    cdef int64_t cum = 0, lt = 0, le = 0, before, prev = 0
    cdef double d, dmax, ap_sum = 0.0
    cdef real v, tmax
    cdef PosKey* keys
    cdef int64_t* buf
    cdef double* pd
    cdef int64_t* pidx
    cdef int64_t* hist
    ap[0] = 0.0
    inp[0] = 0.0
    first[0] = 0
    npos[0] = 0
    if num_same == 0:
        return 0
    keys = <PosKey*> malloc(num_same * sizeof(PosKey))
    if keys == NULL:
        return -1
    for i in range(num_same):
        g = same[i]
        if camera_free or g_cams[g] != qc:
            keys[num_pos].d = row[g]
            keys[num_pos].idx = g
            num_pos += 1
    if num_pos == 0:
        free(keys)
        return 0
    qsort(keys, num_pos, sizeof(PosKey), _cmp_key)
    # hist[0..P] | positive indices[P] | positive distances[P] (8-byte slots each)
    buf = <int64_t*> calloc(3 * num_pos + 1, sizeof(int64_t))
    if buf == NULL:
        free(keys)
        return -1
    hist = buf
    pidx = buf + num_pos + 1
    pd = <double*> (buf + 2 * num_pos + 1)
    for i in range(num_pos):
        pd[i] = keys[i].d
        pidx[i] = keys[i].idx
    free(keys)
    dmax = pd[num_pos - 1]
    if num_pos <= 64:
        # few positives: compress the items that may precede a positive (d <= dmax), then one
        # vectorised counting pass over them per positive
        tmax = <real> dmax
        for g in range(num_g):
            v = row[g]
            cand[num_cand] = v
            num_cand += v <= tmax
        for j in range(num_pos):
            _count_below(cand, num_cand, <real> pd[j], &lt, &le)
            before = lt  # items with a smaller distance
            if le - lt > 1:  # ties at pd[j]: add equal items with a smaller gallery index
                for g in range(pidx[j]):
                    before += row[g] == pd[j]
            # hist[j] = #items with key in (key_{j-1}, key_j], so cumsum(hist)[j] = before + 1
            hist[j] = before + 1 - prev
            prev = before + 1
    else:
        # many positives: bin every candidate by a binary search over the positive keys
        for g in range(num_g):
            d = row[g]
            if d <= dmax:
                hist[_num_before(pd, pidx, num_pos, d, g)] += 1
    if not camera_free:  # take the junk (same pid, same camera) back out
        for i in range(num_same):
            g = same[i]
            d = row[g]
            if g_cams[g] == qc and d <= dmax:
                hist[_num_before(pd, pidx, num_pos, d, g)] -= 1
    for i in range(num_pos):
        cum += hist[i]
        ap_sum += (i + 1.0) / cum
    ap[0] = ap_sum / num_pos
    inp[0] = num_pos / <double> cum
    first[0] = hist[0]
    npos[0] = num_pos
    free(buf)
    return 0


def rank_chunk_cy(const real[:, ::1] dist, const int64_t[::1] q_pids, const int64_t[::1] q_cams,
                  const int64_t[::1] g_pids, const int64_t[::1] g_cams,
                  const int64_t[::1] g_order, const int64_t[::1] lo, const int64_t[::1] hi,
                  bint camera_free, double[::1] ap_out, double[::1] inp_out,
                  int64_t[::1] first_out, int64_t[::1] npos_out):
    """Fill per-query AP, INP, first-match rank and #positives (see module docstring).

    The gallery items sharing query b's pid are ``g_order[lo[b]:hi[b]]`` (ascending);
    ``q_pids``/``g_pids`` are only length-checked (kept for the shared kernel signature).
    """
    cdef Py_ssize_t num_q = dist.shape[0], num_g = dist.shape[1], b
    cdef int failed = 0
    cdef real* cand
    for name, n, want in (("q_pids", q_pids.shape[0], num_q), ("q_cams", q_cams.shape[0], num_q),
                          ("lo", lo.shape[0], num_q), ("hi", hi.shape[0], num_q),
                          ("ap_out", ap_out.shape[0], num_q), ("inp_out", inp_out.shape[0], num_q),
                          ("first_out", first_out.shape[0], num_q),
                          ("npos_out", npos_out.shape[0], num_q),
                          ("g_pids", g_pids.shape[0], num_g), ("g_cams", g_cams.shape[0], num_g),
                          ("g_order", g_order.shape[0], num_g)):
        if n != want:
            raise ValueError(f"rank_chunk_cy: {name} has length {n}, expected {want}")
    if num_q == 0:
        return
    if num_g == 0:
        ap_out[:] = 0.0
        inp_out[:] = 0.0
        first_out[:] = 0
        npos_out[:] = 0
        return
    for b in range(num_q):
        if not (0 <= lo[b] <= hi[b] <= num_g):
            raise ValueError("rank_chunk_cy: invalid lo/hi bounds")
    for b in range(num_g):  # gallery indices read without bounds checks below
        if not (0 <= g_order[b] < num_g):
            raise ValueError("rank_chunk_cy: g_order holds an index outside 0..num_g-1")
    with nogil, parallel():
        cand = <real*> malloc(num_g * sizeof(real))  # per-thread scratch
        for b in prange(num_q, schedule="dynamic", chunksize=16):
            if cand == NULL:
                failed += 1
            else:
                failed += _eval_one(&dist[b, 0], num_g, q_cams[b], &g_cams[0],
                                    &g_order[0] + lo[b], hi[b] - lo[b], camera_free, cand,
                                    &ap_out[b], &inp_out[b], &first_out[b], &npos_out[b]) != 0
        free(cand)
    if failed:
        raise MemoryError("rank_chunk_cy: out of memory")
