"""Pure NumPy kernel of the rank evaluator (fallback for the compiled ``rank_cy``).

Both kernels share one signature and fill per-query outputs; ``rank.py`` aggregates them.

Ranking rule (identical in both kernels): the valid gallery of a query is sorted by the key
``(distance, gallery index)``, i.e. a *stable* ascending sort, so ties are broken by gallery
index. The 1-based rank of a positive ``p`` is therefore::

    rank(p) = 1 + #{valid g : d_g < d_p} + #{valid g : d_g == d_p and g < p}

No row is ever fully argsorted: per query only the K items with ``d <= max positive distance``
are kept, then either sorted (K small or many positives) or counted against each positive
with one vectorised pass per positive.
"""
import numpy as np

__all__ = ["rank_chunk_numpy"]

_PASSES_MIN_CAND = 4096  # counting passes need this many candidates ...
_PASSES_MAX_POS = 40  # ... and at most this many positives; otherwise sort the candidates


def _positive_ranks(row, pos):
    """Ascending 1-based ranks of the positives ``pos`` (ascending gallery indices) in ``row``.

    Junk items must already be NaN in ``row``: NaN never compares true, so they are ignored.
    """
    pd = row[pos]
    cand = np.compress(row <= pd.max(), row)  # only items that can precede some positive
    num_pos, num_cand = pos.size, cand.size
    if num_pos > _PASSES_MAX_POS or num_cand < _PASSES_MIN_CAND:
        # sort the short (or heavily queried) candidate list once: O(K log K + P log K)
        cand.sort()  # cand is a fresh array
        lt = cand.searchsorted(pd, side="left")
        le = cand.searchsorted(pd, side="right")
    else:
        # few positives, many candidates: two vectorised counting passes per positive, O(P K)
        lt = np.fromiter((np.count_nonzero(cand < v) for v in pd), np.int64, num_pos)
        le = np.fromiter((np.count_nonzero(cand <= v) for v in pd), np.int64, num_pos)
    le -= lt
    if le.max() > 1:  # another item shares a positive's distance (rare)
        for j in np.flatnonzero(le > 1):  # add the equal items with a smaller gallery index
            lt[j] += np.count_nonzero(row[:pos[j]] == pd[j])
    lt += 1
    lt.sort()
    return lt


def rank_chunk_numpy(dist, q_pids, q_cams, g_pids, g_cams, g_order, lo, hi, camera_free,
                     ap_out, inp_out, first_out, npos_out):
    """Fill per-query AP, INP, first-match rank and #positives for the rows of ``dist``.

    Args:
        dist: (B, G) float32/float64 C-contiguous distances (no NaN).
        q_pids, q_cams: (B,) int64; g_pids, g_cams: (G,) int64.
        g_order: (G,) int64 stable argsort of ``g_pids``; the gallery items with the pid of
            query ``b`` are ``g_order[lo[b]:hi[b]]`` (ascending indices).
        camera_free: if True nothing is removed; otherwise same pid AND same camera is junk.
        ap_out, inp_out: (B,) float64; first_out, npos_out: (B,) int64. Queries without a
            positive get ``npos_out = 0`` and ``first_out = 0``.

    With sorted valid ranks r_1 < ... < r_P of the P positives:
    ``AP = (1/P) sum_i i / r_i``, ``INP = P / r_P``, first-match rank ``= r_1``.
    """
    del g_pids, q_pids  # same-pid items come from g_order/lo/hi
    num_q = dist.shape[0]
    counts = hi - lo
    starts = np.concatenate([[0], np.cumsum(counts)])
    total = int(starts[-1])
    # all (query, same-pid gallery item) pairs of the chunk, query-major, ascending gallery index
    qrow = np.repeat(np.arange(num_q), counts)
    flat = g_order[np.arange(total) - np.repeat(starts[:-1] - lo, counts)]
    if camera_free:
        is_junk = np.zeros(total, bool)
    else:
        is_junk = g_cams[flat] == q_cams[qrow]
    order = np.lexsort((is_junk, qrow))  # stable: per query, positives first, then junk
    flat = flat[order]
    npos = counts - np.bincount(qrow, weights=is_junk, minlength=num_q).astype(np.int64)
    is_pos = np.arange(total) < np.repeat(starts[:-1] + npos, counts)
    pos_q = qrow[is_pos]
    pos_start = np.cumsum(npos) - npos
    ranks = np.zeros(pos_q.size, np.int64)  # ascending ranks of each query's positives
    bounds = zip(starts[:-1].tolist(), (starts[:-1] + npos).tolist(), starts[1:].tolist(),
                 pos_start.tolist())  # plain ints: cheaper slicing in the loop
    for b, (s, m, e, p) in enumerate(bounds):
        if m == s:
            continue  # no positive: skipped query
        row = dist[b]
        if e > m:  # hide junk: NaN compares false everywhere
            row = row.copy()
            row[flat[m:e]] = np.nan
        ranks[p:p + m - s] = _positive_ranks(row, flat[s:m])
    # vectorised AP / INP / first rank over all positives of the chunk
    valid = npos > 0
    pos_j = np.arange(pos_q.size) - np.repeat(pos_start, npos) + 1  # 1..P within each query
    npos_out[:] = npos
    ap_out[:] = 0.0
    inp_out[:] = 0.0
    first_out[:] = 0
    ap_out[valid] = np.bincount(pos_q, weights=pos_j / np.maximum(ranks, 1),
                                minlength=num_q)[valid] / npos[valid]
    first_out[valid] = ranks[pos_start[valid]]
    inp_out[valid] = npos[valid] / ranks[pos_start[valid] + npos[valid] - 1]
