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

_SPARSE_MAX = 2048  # float32 rows with at most this many candidates use the vectorised path
_PASSES_MIN_CAND = 4096  # per-row path: counting passes need this many candidates ...
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
        sorted_cand = np.sort(cand)
        lt = np.searchsorted(sorted_cand, pd, side="left")
        le = np.searchsorted(sorted_cand, pd, side="right")
    else:
        # few positives, many candidates: two vectorised counting passes per positive, O(P K)
        lt = np.fromiter((np.count_nonzero(cand < v) for v in pd), np.int64, num_pos)
        le = np.fromiter((np.count_nonzero(cand <= v) for v in pd), np.int64, num_pos)
    tied = np.flatnonzero(le - lt > 1)  # another item shares this positive's distance
    for j in tied:  # rare: add the equal items with a smaller gallery index
        lt[j] += np.count_nonzero(row[:pos[j]] == pd[j])
    lt += 1
    lt.sort()
    return lt


def _mono32(vals):
    """Order-preserving map of float32 (no NaN) to int64 in [0, 2**32); -0.0 == +0.0."""
    bits = (vals + np.float32(0.0)).view(np.int32).astype(np.int64)  # canonical +0.0
    return np.where(bits >= 0, bits, bits ^ 0x7FFFFFFF) + (1 << 31)


def _sparse_rows_f32(dist, pos_q, pos_g, junk_q, junk_g, npos, out):
    """Vectorised ranks for float32 rows with few candidates; returns the rows left to do.

    All candidates (d <= max positive distance, junk excluded) of the chunk get the key
    ``(row << 32) | mono(d)``; one sort and two ``searchsorted`` calls give, per positive,
    the number of valid items with a smaller / not larger distance in its row.
    """
    num_q, num_g = dist.shape
    valid = npos > 0
    pd = dist[pos_q, pos_g]
    dmax = np.full(num_q, np.nan, np.float32)  # NaN: no candidates for rows without positives
    dmax[valid] = np.maximum.reduceat(pd, (np.cumsum(npos) - npos)[valid])
    mask = dist <= dmax[:, None]
    mask[junk_q, junk_g] = False
    sparse = valid & (np.count_nonzero(mask, axis=1) <= _SPARSE_MAX)
    mask[~sparse] = False  # dense rows are left to the per-row path
    cand = np.flatnonzero(mask)
    del mask
    cand_q = cand // num_g
    num_cand = np.bincount(cand_q, minlength=num_q)
    keys = (cand_q << 32) | _mono32(dist.ravel()[cand])
    keys.sort()
    seg = np.cumsum(num_cand) - num_cand  # first key of each row
    sel = sparse[pos_q]
    q, g, v = pos_q[sel], pos_g[sel], pd[sel]
    pkeys = (q << 32) | _mono32(v)
    lt = np.searchsorted(keys, pkeys, side="left") - seg[q]
    le = np.searchsorted(keys, pkeys, side="right") - seg[q]
    for i in np.flatnonzero(le - lt > 1):  # rare ties: equal distance, smaller index, not junk
        row = dist[q[i]]
        jg = junk_g[junk_q == q[i]]
        lt[i] += np.count_nonzero(row[:g[i]] == v[i]) - np.count_nonzero((jg < g[i]) & (row[jg] == v[i]))
    ranks = np.sort((q << 32) | (lt + 1)) & 0xFFFFFFFF  # ascending ranks within each row
    out[np.flatnonzero(sel)] = ranks
    return np.flatnonzero(valid & ~sparse)


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
    todo = np.flatnonzero(npos)
    if dist.dtype == np.float32 and todo.size:
        todo = _sparse_rows_f32(dist, pos_q, flat[is_pos], qrow[~is_pos], flat[~is_pos], npos,
                                ranks)
    for b in todo:
        s, m, e = starts[b], starts[b] + npos[b], starts[b + 1]
        row = dist[b]
        if e > m:  # hide junk: NaN compares false everywhere
            row = row.copy()
            row[flat[m:e]] = np.nan
        ranks[pos_start[b]:pos_start[b] + npos[b]] = _positive_ranks(row, flat[s:m])
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
