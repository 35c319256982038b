"""HDC, Harmonic Discrepancy Clustering (3C), vectorised in torch.

Inputs: unit features X [N, d], a pairwise distance J (the k-reciprocal Jaccard distance: N x N
CSR with unstored entries = 1, or a dense array) and a fixed K.  With A = 1 - exp(-J) and
H(a, b) = a·b / (a + b), one iteration is:

a. anchor confidence ``b_k = exp(-s · d(x_k, c_{y_k}) / max d(X, C))`` (s = ``confidence_scale``);
b. harmonic discrepancy ``HD[i, j] = A[i, k*]`` with ``k* = argmax_{k: y_k = j} H(A[i, k], b_k)``
   (first k on ties; an empty cluster gets HD = 1, above any A <= 1 - 1/e);
c. ``y_i = argmin_j HD[i, j]``, ``h_i = HD[i, y_i]``, ``m_i = (sum_j HD[i, j] - h_i) / (K - 1)``;
d. empty clusters take the samples with the smallest m (members of clusters with fewer than
   ``protect`` members rank last), one each, until no cluster is empty;
e. peripheral object detection: in a cluster of >= 2 members, ``h_i > mean + n_sigma·std`` (ddof 1)
   or ``h_i > threshold`` when one is given marks i peripheral;
f. centroids = mean of the non-peripheral members (optionally L2-normalised); a cluster left
   without any keeps its previous centroid (the reference would produce NaN);
g. stop when the centroid shift ``sum ||c_old - c_new||^2`` is 0, or, from iteration ``min_iter``
   on, after ``patience + 1`` consecutive iterations without a new lowest shift; at most
   ``max_iter`` iterations.

Step b reads only the stored entries of J (a Jaccard distance stores a few hundred per row): every
unstored entry has the same A = 1 - 1/e, so the best unstored member of a cluster is found from a
ranking of its members by H(1 - 1/e, b_k) (``harmonic_discrepancy``).  Time and memory are
O(N·K + stored entries), never N x N, on the device of the computation (CUDA when given).

Anchor distances d (``distance``):

* ``"euler"``: ``sum_d 1 - cos(alpha·pi·(x_d - c_d))``, the squared modulus of the Euler
  embedding z = e^{i alpha pi x}/sqrt 2 (the paper's Euler cosine distance; the default);
* ``"euler_complex"``: ``|sum_d (z_d(x) - z_d(c))^2|``, the complex *square* of the released
  code;
* ``"cosine"``: 1 - <x, c>;  ``"euclidean"``: ||x - c||.

Initialisations (``init``): ``"kmeans++2"`` greedy k-means++ on J itself, potential = raw J
(``kmeans.greedy_kmeanspp``), labels = argmin over seeds of J, centroids = seed features (the
reference's k-means++2); ``"kmeans++"`` greedy k-means++ on the features, labels = nearest seed;
``"random"`` uniform labels, centroids = their means.  All draws come from ``generator`` (the
reference's RNG is unseeded).
"""
from __future__ import annotations

from typing import NamedTuple, Optional

import numpy as np
import scipy.sparse as sp
import torch

from .kmeans import _init_pp, _nearest, greedy_kmeanspp

__all__ = ["hdc", "HDCResult", "anchor_distances", "harmonic_discrepancy", "relocate_empty",
           "peripheral_mask", "DISTANCES", "INITS"]

DISTANCES = ("euler", "euler_complex", "cosine", "euclidean")
INITS = ("kmeans++2", "kmeans++", "random")
_CHUNK = 1 << 20  # stored entries of A handled at once in step b
_GROUPS = 1 << 22  # rows x K cells of the per-chunk buffers of step b
_BITS = 62         # stored ranks tracked as bits of an int64 per (row, cluster) cell


class HDCResult(NamedTuple):
    labels: np.ndarray       # full assignment y (0..K-1)
    peripheral: np.ndarray   # bool: flagged by the last POD
    centroids: np.ndarray    # K x d, non-peripheral means of the last iteration
    iterations: int


def _canonical_csr(dist) -> sp.csr_matrix:
    """J as a float32 CSR with sorted, unique columns per row; unstored = 1.  A dense input stores
    every entry that is not exactly 1 (NaN included); duplicates add up as in ``1 - sum(1 - J)``.
    The caller's arrays are shared, not copied, when they are already in this form."""
    if not sp.issparse(dist):
        dense = np.asarray(dist, dtype=np.float32)
        if dense.ndim != 2:
            raise ValueError(f"HDC needs a square N x N distance, got shape {dense.shape}")
        keep = ~(dense == 1.0)
        return sp.csr_matrix((dense[keep], np.nonzero(keep)[1].astype(np.int32),
                              np.r_[0, np.cumsum(keep.sum(1))]), shape=dense.shape)
    csr = dist.tocsr()
    if csr.dtype != np.float32:
        csr = csr.astype(np.float32)
    if not csr.has_canonical_format:
        comp = sp.csr_matrix((1.0 - csr.data, csr.indices.copy(), csr.indptr.copy()), shape=csr.shape)
        comp.sum_duplicates()
        csr = sp.csr_matrix((1.0 - comp.data, comp.indices, comp.indptr), shape=csr.shape)
    return csr


class _JaccardRows:
    """J (``_canonical_csr``): dense rows for the initialisation, and the stored entries of
    A = 1 - exp(-J) chunk by chunk for step b (every unstored entry of A is ``fill``)."""

    def __init__(self, dist, device) -> None:
        self.csr = _canonical_csr(dist)
        n, m = self.csr.shape
        if n != m:
            raise ValueError(f"HDC needs a square N x N distance, got {n} x {m}")
        self.n, self.n_cols, self.device = n, n, device
        self.fill = float(_discrepancy(torch.ones(1))[0])

    def _values(self, data: np.ndarray) -> torch.Tensor:
        # J is read back as 1 - (1 - J) in float32, the rounding of a dense row (``__call__``)
        return 1.0 - torch.from_numpy(1.0 - data).to(self.device)

    def __call__(self, idx) -> torch.Tensor:
        """Dense rows J[idx, :]."""
        if isinstance(idx, torch.Tensor):
            idx = idx.cpu().numpy()
        block = self.csr[idx]
        comp = sp.csr_matrix((1.0 - block.data, block.indices, block.indptr), shape=block.shape)
        return 1.0 - torch.from_numpy(comp.toarray()).to(self.device)

    def chunks(self, max_rows: int):
        """(row0, row1, local row [E], column [E], A [E]) for consecutive row ranges of at most
        ``max_rows`` rows and about ``_CHUNK`` stored entries."""
        indptr, rows = self.csr.indptr, self.n
        lo = 0
        while lo < rows:
            hi = max(lo + 1, int(np.searchsorted(indptr, indptr[lo] + _CHUNK, side="right")) - 1)
            hi = min(hi, lo + max_rows)
            e0, e1 = int(indptr[lo]), int(indptr[hi])
            counts = torch.from_numpy(np.diff(indptr[lo:hi + 1]).astype(np.int64)).to(self.device)
            local = torch.repeat_interleave(torch.arange(hi - lo, device=self.device), counts)
            col = torch.from_numpy(self.csr.indices[e0:e1].astype(np.int64)).to(self.device)
            yield lo, hi, local, col, _discrepancy(self._values(self.csr.data[e0:e1]))
            lo = hi


class _DenseRows:
    """Rows of a dense A [R, N] in the chunk form of :class:`_JaccardRows` (everything stored)."""

    def __init__(self, a: torch.Tensor) -> None:
        self.a = a.float()
        self.n, self.n_cols = a.shape
        self.fill, self.device = 1.0, a.device

    def chunks(self, max_rows: int):
        step = max(1, min(max_rows, _CHUNK // max(1, self.n_cols)))
        for lo in range(0, self.n, step):
            hi = min(self.n, lo + step)
            local = torch.arange(hi - lo, device=self.device).repeat_interleave(self.n_cols)
            col = torch.arange(self.n_cols, device=self.device).repeat(hi - lo)
            yield lo, hi, local, col, self.a[lo:hi].reshape(-1)


def _discrepancy(j: torch.Tensor) -> torch.Tensor:
    """A = 1 - exp(-J), clipped to [0, 1], NaN -> 1."""
    return torch.nan_to_num(1.0 - torch.exp(-j), nan=1.0).clamp_(0.0, 1.0)


def anchor_distances(x: torch.Tensor, c: torch.Tensor, kind: str = "euler", alpha: float = 1.9):
    """[N, K] distances between rows of x and centroids c (module docstring)."""
    if kind == "euler":
        tx, tc = alpha * np.pi * x, alpha * np.pi * c
        dots = torch.cos(tx) @ torch.cos(tc).T + torch.sin(tx) @ torch.sin(tc).T
        return (x.shape[1] - dots).clamp_min_(0)
    if kind == "euler_complex":
        # sum_d (z_d(x) - z_d(c))^2 = S(x)/2 + S(c)/2 - u(x)·u(c), u = e^{i alpha pi x}, S = sum u^2
        ux = torch.polar(torch.ones_like(x), alpha * np.pi * x)
        uc = torch.polar(torch.ones_like(c), alpha * np.pi * c)
        sx, sc = (ux * ux).sum(1), (uc * uc).sum(1)
        return (sx[:, None] / 2 + sc[None] / 2 - ux @ uc.T).abs()
    if kind == "cosine":
        return 1.0 - x @ c.T
    if kind == "euclidean":
        return torch.cdist(x, c)
    raise ValueError(f"CLUSTER.HDC.DISTANCE must be one of {DISTANCES}, got {kind!r}")


def harmonic_discrepancy(a, b: torch.Tensor, labels: torch.Tensor, k: int) -> torch.Tensor:
    """HD [R, K] for rows of A (a dense [R, N] tensor, or the stored entries of a
    :class:`_JaccardRows`), anchor confidences b [N] and labels [N] (module docstring, step b),
    in O(stored entries + R·K).

    In cluster j the best *unstored* member of row i is the one with the largest H(fill, b_k),
    first k on ties: the members of j are ranked once by (-H(fill, b_k), k), and row i's best
    unstored member is the first in that order that row i does not store.  It competes with row
    i's stored members of j by (H desc, k asc); HD[i, j] is the A of the winner (the fill when an
    unstored member wins, 1 when j is empty)."""
    if isinstance(a, torch.Tensor):
        a = _DenseRows(a)
    device, n = b.device, a.n_cols
    labels = labels.to(device).long()
    sizes = torch.bincount(labels, minlength=k)
    h_fill = _harmonic(torch.full_like(b, a.fill), b)
    by_h = torch.argsort(-h_fill, stable=True)                 # (-H(fill, b), k)
    members = by_h[torch.argsort(labels[by_h], stable=True)]   # (label, -H(fill, b), k)
    starts = torch.cumsum(sizes, 0) - sizes
    position = torch.empty(n, dtype=torch.long, device=device)
    position[members] = torch.arange(n, device=device) - starts[labels[members]]
    rank = _Ranking(members, starts, sizes, h_fill, position)
    hd = torch.full((a.n, k), a.fill, dtype=torch.float32, device=device)
    hd[:, sizes == 0] = 1.0
    for lo, hi, local, col, val in a.chunks(max(1, _GROUPS // k)):
        _stored_groups(hd[lo:hi], lo, local, col, val, b, labels, rank, a.fill, n)
    return hd


class _Ranking(NamedTuple):
    members: torch.Tensor   # sample indices by (label, -H(fill, b), index)
    starts: torch.Tensor    # [K] first position of each cluster in ``members``
    sizes: torch.Tensor     # [K]
    h_fill: torch.Tensor    # [N] H(fill, b_k)
    rank: torch.Tensor      # [N] position of each sample among its cluster's members


def _harmonic(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """H(a, b) = a·b / (a + b), 0 where a + b = 0."""
    s = a + b
    return torch.where(s > 0, a * b / s, torch.zeros_like(a))


def _stored_groups(hd, row0, local, col, val, b, labels, rank: _Ranking, fill, n):
    """Rows ``row0 + local`` of ``harmonic_discrepancy`` where they store members (``hd``: their
    [R, K] block, set in place)."""
    r, k = hd.shape
    cells = local * k + labels[col]                        # (row, cluster) cell of each entry
    h = _harmonic(val, b[col])                             # >= 0
    best = torch.full((r * k,), -1.0, device=h.device).scatter_reduce_(0, cells, h, "amax")
    top = h == best[cells]
    kstar = torch.full((r * k,), n, device=h.device).scatter_reduce_(
        0, cells, torch.where(top, col, n), "amin")
    hit = top & (col == kstar[cells])
    astar = torch.empty(r * k, device=h.device)
    astar[cells[hit]] = val[hit]
    cell = torch.nonzero(best >= 0).flatten()              # cells holding stored members
    cr, cj = cell // k, cell % k
    # the first member (in ranking order) the row does not store: the lowest clear bit of the
    # cell's bit set of stored ranks (ranks < 62; a cell storing all of those walks on)
    er = rank.rank[col]
    low = er < _BITS
    bits = torch.zeros(r * k, dtype=torch.long, device=h.device).scatter_add_(
        0, cells[low], torch.bitwise_left_shift(torch.ones_like(er[low]), er[low]))[cell]
    pos = torch.log2(((~bits) & (bits + 1)).double()).round_().long()
    active = torch.nonzero(pos == _BITS).flatten()
    if active.numel():
        keys = (local + row0) * n + col                    # sorted: CSR rows, sorted columns
        while active.numel():                              # a binary search per step
            active = active[pos[active] < rank.sizes[cj[active]]]
            cand = rank.members[rank.starts[cj[active]] + pos[active]]
            key = (cr[active] + row0) * n + cand
            found = keys[torch.searchsorted(keys, key).clamp_(max=keys.numel() - 1)] == key
            active = active[found]
            pos[active] += 1
    has_free = pos < rank.sizes[cj]
    free = rank.members[(rank.starts[cj] + pos).clamp(max=n - 1)]
    hf, hb = rank.h_fill[free], best[cell]
    free_wins = has_free & ((hf > hb) | ((hf == hb) & (free < kstar[cell])))
    hd.view(-1)[cell] = torch.where(free_wins, torch.full_like(hb, fill), astar[cell])


def relocate_empty(labels: torch.Tensor, h: torch.Tensor, m: torch.Tensor, hd: torch.Tensor, k: int,
                   protect: int = 5):
    """Fill empty clusters with the lowest-m samples (module docstring, step d); in place."""
    for _ in range(k):
        counts = torch.bincount(labels, minlength=k)
        empty = torch.nonzero(counts == 0).flatten()
        if empty.numel() == 0:
            return labels, h
        key = m.clone()
        key[counts[labels] < protect] = 1.0
        pick = torch.argsort(key, stable=True)[:empty.numel()]
        labels[pick] = empty
        h[pick] = hd[pick, empty]
    raise RuntimeError(f"HDC could not fill its empty clusters (K={k} for N={len(labels)} samples); "
                       f"lower CLUSTER.NUM_CLUSTERS")


def peripheral_mask(labels: torch.Tensor, h: torch.Tensor, k: int, n_sigma: float = 1.0,
                    threshold: Optional[float] = None) -> torch.Tensor:
    """POD (step e): True for peripheral samples; clusters of one member are never pruned."""
    counts = torch.bincount(labels, minlength=k)
    big = counts[labels] >= 2
    if threshold is not None:
        return big & (h > threshold)
    hd = h.double()
    s1 = torch.zeros(k, dtype=torch.float64, device=h.device).index_add_(0, labels, hd)
    s2 = torch.zeros(k, dtype=torch.float64, device=h.device).index_add_(0, labels, hd * hd)
    n = counts.double()
    mean = s1 / n.clamp(min=1)
    std = ((s2 - n * mean * mean).clamp(min=0) / (n - 1).clamp(min=1)).sqrt()
    return big & (hd > (mean + n_sigma * std)[labels])


def _initialise(x, rows: _JaccardRows, k, init, gen):
    n = x.shape[0]
    if init == "kmeans++2":
        seeds = greedy_kmeanspp(n, k, rows, gen)
        labels = rows(seeds).argmin(0)                 # J is symmetric: column s = row s
        return labels, x[seeds].clone()
    if init == "kmeans++":
        c = _init_pp(x, k, gen)
        return _nearest(x, c)[0], c
    if init == "random":
        labels = torch.randint(k, (n,), generator=gen).to(x.device)
        c = x[torch.randint(n, (k,), generator=gen).to(x.device)].clone()
        return labels, _centroids(x, labels, torch.zeros(n, dtype=torch.bool, device=x.device), c, False)
    raise ValueError(f"CLUSTER.HDC.INIT must be one of {INITS}, got {init!r}")


def _centroids(x, labels, peripheral, previous, normalize):
    k = previous.shape[0]
    core = ~peripheral
    sums = torch.zeros_like(previous).index_add_(0, labels[core], x[core])
    counts = torch.bincount(labels[core], minlength=k)
    c = torch.where(counts[:, None] > 0, sums / counts.clamp(min=1)[:, None].to(x.dtype), previous)
    return torch.nn.functional.normalize(c, dim=1) if normalize else c


def hdc(features, dist, k: int, *, init: str = "kmeans++2", max_iter: int = 80, min_iter: int = 10,
        patience: int = 4, distance: str = "euler", alpha: float = 1.9, confidence_scale: float = 5.0,
        n_sigma: float = 1.0, threshold: Optional[float] = None, normalize: bool = False,
        protect: int = 5, generator: Optional[torch.Generator] = None, device=None) -> HDCResult:
    """Run HDC (module docstring) and return the assignment, the peripheral flags and centroids."""
    x = torch.as_tensor(features).detach().float()
    device = torch.device(device) if device is not None else x.device
    x = x.to(device)
    n = x.shape[0]
    if not 2 <= int(k) <= n:
        raise ValueError(f"HDC needs 2 <= K <= N, got K={k} for N={n} samples (CLUSTER.NUM_CLUSTERS)")
    if distance not in DISTANCES:
        raise ValueError(f"CLUSTER.HDC.DISTANCE must be one of {DISTANCES}, got {distance!r}")
    rows = _JaccardRows(dist, device)
    if rows.n != n:
        raise ValueError(f"HDC got {n} features but a {rows.n} x {rows.n} distance")
    gen = generator if generator is not None else torch.Generator().manual_seed(0)
    labels, c = _initialise(x, rows, int(k), init, gen)
    best, bad, it = float("inf"), 0, 0
    peripheral = torch.zeros(n, dtype=torch.bool, device=device)
    for it in range(1, max_iter + 1):
        d = anchor_distances(x, c, distance, alpha)
        b = torch.exp(-confidence_scale * d.gather(1, labels[:, None])[:, 0] / d.max().clamp(min=1e-12))
        hd = harmonic_discrepancy(rows, b, labels, k)
        new = hd.argmin(1)
        h = hd.gather(1, new[:, None])[:, 0]
        m = (hd.sum(1) - h) / (k - 1)
        new, h = relocate_empty(new, h, m, hd, k, protect)
        peripheral = peripheral_mask(new, h, k, n_sigma, threshold)
        c_new = _centroids(x, new, peripheral, c, normalize)
        shift = float(((c - c_new) ** 2).sum())
        c, labels = c_new, new
        if shift == 0:
            break
        if it > min_iter:
            if shift < best:
                best, bad = shift, 0
            elif bad == patience:
                break
            else:
                bad += 1
    return HDCResult(labels.cpu().numpy().astype(np.int64), peripheral.cpu().numpy(),
                     c.cpu().numpy().astype(np.float32), it)
