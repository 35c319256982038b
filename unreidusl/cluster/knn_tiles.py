"""Candidates of an exact kNN self-search from symmetric distance tiles (``knn.py``'s blocked
backends).

The N x N distance matrix is computed in ``block x block`` tiles on and above the diagonal only (it
is symmetric: an off-diagonal tile serves its row block and, transposed, its column block).

1. The diagonal tiles come first: a top-``kk`` per row gives every row ``kk`` candidates and a
   threshold ``t_i`` = the largest of them, an upper bound of its true ``kk``-th distance (the
   diagonal tile must see all its columns: in high dimensions most distances are close to each
   other, so the threshold of a column subset would let most of the later tiles through).
2. An off-diagonal tile then only keeps the entries ``d_ij <= t_i`` for its rows and
   ``d_ij <= t_j`` for its columns (a comparison and a gather instead of two top-k selections
   and a transposed copy).  Nothing of the true top-``kk`` is lost: a row's ``kk``-th distance
   never exceeds its threshold.  Thresholds are tightened whenever a block's kept entries pass a
   few per row.
3. Each row keeps its ``kk`` smallest candidates.

Works on torch tensors (CPU or CUDA) or NumPy arrays through ``knn.py``'s ``ops`` objects.
"""
from __future__ import annotations

import numpy as np

from ..utils.progress import progress

__all__ = ["self_candidates"]

_COMPACT_PER_ROW = 8  # kept entries per row (in units of kk) that trigger a compaction


def _below(d, thr: np.ndarray):
    """(row, column, value) NumPy arrays of the entries ``d <= thr`` (broadcast) of a tile, in
    row-major order; ``d`` a NumPy array or a torch tensor (a CPU tensor is read in place)."""
    if not isinstance(d, np.ndarray):
        if d.device.type != "cpu":
            import torch  # noqa: PLC0415 - only for device tensors

            mask = d <= torch.from_numpy(thr).to(d.device)
            rc = torch.nonzero(mask).cpu().numpy()
            return rc[:, 0], rc[:, 1], d[mask].cpu().numpy()
        d = d.numpy()
    flat = np.flatnonzero(d <= thr)
    r, c = np.divmod(flat, d.shape[1])
    return r, c, d.ravel()[flat]


def _compact(rows, cols, vals, num_rows, kk):
    """Per row the ``kk`` smallest candidates (any order among equal values: ``knn.py`` settles
    ties at the k-th place): [num_rows, kk] arrays padded with +inf / -1 (rows with fewer
    candidates), and the threshold (the kk-th value, +inf when a row has fewer)."""
    vals = np.asarray(vals, np.float32) + np.float32(0.0)   # -0.0 -> +0.0
    # (row, value) as one int64 key: the bits of a float32 >= 0 (+inf included) order as its value
    key = (rows.astype(np.int64) << 32) | vals.view(np.uint32).astype(np.int64)
    order = np.argsort(key)
    rows, cols, vals = rows[order], cols[order], vals[order]
    counts = np.bincount(rows, minlength=num_rows)
    first = np.cumsum(counts) - counts
    pos = np.arange(rows.shape[0]) - first[rows]
    keep = pos < kk
    out_v = np.full((num_rows, kk), np.inf, np.float32)
    out_i = np.full((num_rows, kk), -1, np.int64)
    out_v[rows[keep], pos[keep]] = vals[keep]
    out_i[rows[keep], pos[keep]] = cols[keep]
    return out_v, out_i, out_v[:, -1].copy()


class _Block:
    """The candidates of one row block: a compact [rows, kk] part plus triples kept since."""

    def __init__(self, num_rows: int, kk: int) -> None:
        self.num_rows, self.kk = num_rows, kk
        self.vals = np.full((num_rows, kk), np.inf, np.float32)
        self.idx = np.full((num_rows, kk), -1, np.int64)
        self.threshold = np.full(num_rows, np.inf, np.float32)
        self.pending = []
        self.pending_size = 0

    def add(self, rows, cols, vals) -> None:
        self.pending.append((rows, cols, vals))
        self.pending_size += rows.shape[0]
        if self.pending_size > _COMPACT_PER_ROW * self.kk * self.num_rows:
            self.compact()

    def compact(self) -> None:
        if not self.pending:
            return
        have = self.idx >= 0
        rows = [np.nonzero(have)[0]] + [p[0] for p in self.pending]
        cols = [self.idx[have]] + [p[1] for p in self.pending]
        vals = [self.vals[have]] + [p[2] for p in self.pending]
        self.vals, self.idx, self.threshold = _compact(
            np.concatenate(rows), np.concatenate(cols), np.concatenate(vals), self.num_rows,
            self.kk)
        self.pending, self.pending_size = [], 0


def self_candidates(ops, q, kk: int, block: int, row_max=None, desc: str = "kNN"):
    """(vals [N, kk] float32, idx [N, kk] int64) of every row of ``q`` against all rows (module
    docstring); ``row_max`` (float32 [N], optional) is updated with each row's largest distance."""
    n = q.shape[0]
    qn = ops.sqnorm(q)
    starts = list(range(0, n, block))
    ends = [min(s + block, n) for s in starts]
    blocks = [_Block(e - s, kk) for s, e in zip(starts, ends)]
    bar = progress(total=len(starts) * (len(starts) + 1) // 2, desc=desc, unit="tile")
    for b, (s, e) in enumerate(zip(starts, ends)):
        # mm(-2a, b) = -2 mm(a, b) bit for bit: ``ops.dist``'s values without its extra pass
        d = ops.tile(q[s:e] * -2.0, qn[s:e], q[s:e], qn[s:e])
        ops.zero_diag(d)
        if row_max is not None:
            np.maximum(row_max[s:e], ops.amax(d, 1), out=row_max[s:e])
        v, i = ops.to_np(*ops.topk_rows(d, min(kk, e - s), s))
        blocks[b].add(np.repeat(np.arange(e - s), v.shape[1]), i.ravel(), np.maximum(v.ravel(), 0))
        blocks[b].compact()
        del d
        bar.update(1)
    for bi, (s, e) in enumerate(zip(starts, ends)):
        q2 = q[s:e] * -2.0
        for bj in range(bi + 1, len(starts)):
            s2, e2 = starts[bj], ends[bj]
            d = ops.tile(q2, qn[s:e], q[s2:e2], qn[s2:e2])
            if row_max is not None:
                np.maximum(row_max[s:e], ops.amax(d, 1), out=row_max[s:e])
                np.maximum(row_max[s2:e2], ops.amax(d, 0), out=row_max[s2:e2])
            # thresholds are >= 0, so d <= t holds exactly when max(d, 0) <= t
            r, c, v = _below(d, blocks[bi].threshold[:, None])
            blocks[bi].add(r.astype(np.int64), c + s2, np.maximum(v, 0))
            r, c, v = _below(d, blocks[bj].threshold[None, :])
            blocks[bj].add(c.astype(np.int64), r + s, np.maximum(v, 0))
            del d
            bar.update(1)
        blocks[bi].compact()
    bar.close()
    if row_max is not None:
        np.maximum(row_max, 0, out=row_max)
    return (np.concatenate([b.vals for b in blocks], 0),
            np.concatenate([b.idx for b in blocks], 0))
