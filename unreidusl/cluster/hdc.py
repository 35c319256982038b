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

Step b is the O(N^2) part: rows of A are built from J in chunks of about ``_CHUNK`` elements and
reduced with a segmented argmax (``utils.segment``), on the device of the computation (CUDA when
given), so memory is O(N·K + chunk) and never N x N.

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

from ..utils.segment import segment_argmax
from .kmeans import _init_pp, _nearest, greedy_kmeanspp

__all__ = ["hdc", "HDCResult", "anchor_distances", "harmonic_discrepancy", "relocate_empty",
           "peripheral_mask", "DISTANCES", "INITS"]

DISTANCES = ("euler", "euler_complex", "cosine", "euclidean")
INITS = ("kmeans++2", "kmeans++", "random")
_CHUNK = 1 << 22  # elements of one rows x N block of A


class HDCResult(NamedTuple):
    labels: np.ndarray       # full assignment y (0..K-1)
    peripheral: np.ndarray   # bool: flagged by the last POD
    centroids: np.ndarray    # K x d, non-peripheral means of the last iteration
    iterations: int


class _JaccardRows:
    """Dense rows of J from a CSR (unstored = 1) or dense N x N distance."""

    def __init__(self, dist, device) -> None:
        if sp.issparse(dist):
            dist = dist.tocsr().astype(np.float32)
            # 1 - J stored (J < 1 wherever stored), so a dense block of J is 1 - block
            self.complement = sp.csr_matrix((1.0 - dist.data, dist.indices, dist.indptr),
                                            shape=dist.shape)
        else:
            self.complement = 1.0 - np.asarray(dist, dtype=np.float32)
        n, m = self.complement.shape
        if n != m:
            raise ValueError(f"HDC needs a square N x N distance, got {n} x {m}")
        self.n, self.device = n, device

    def __call__(self, idx) -> torch.Tensor:
        if isinstance(idx, torch.Tensor):
            idx = idx.cpu().numpy()
        block = self.complement[idx]
        block = block.toarray() if sp.issparse(block) else np.asarray(block)
        return 1.0 - torch.from_numpy(np.ascontiguousarray(block, dtype=np.float32)).to(self.device)

    def discrepancy(self, idx) -> torch.Tensor:
        """A = 1 - exp(-J), clipped to [0, 1], NaN -> 1."""
        a = 1.0 - torch.exp(-self(idx))
        return torch.nan_to_num(a, nan=1.0).clamp_(0.0, 1.0)


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


def harmonic_discrepancy(a: torch.Tensor, b: torch.Tensor, labels: torch.Tensor, k: int):
    """HD [R, K] for rows a = A[rows, :] [R, N], anchor confidences b [N] and labels [N]."""
    s = a + b[None]
    h = torch.where(s > 0, a * b[None] / s, torch.zeros_like(a))
    _, index = segment_argmax(h, labels, k)
    empty = index == a.shape[1]
    hd = a.gather(1, index.clamp(max=a.shape[1] - 1))
    return hd.masked_fill_(empty, 1.0)


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
    step = max(1, _CHUNK // n)
    best, bad, it = float("inf"), 0, 0
    peripheral = torch.zeros(n, dtype=torch.bool, device=device)
    for it in range(1, max_iter + 1):
        d = anchor_distances(x, c, distance, alpha)
        b = torch.exp(-confidence_scale * d.gather(1, labels[:, None])[:, 0] / d.max().clamp(min=1e-12))
        hd = torch.cat([harmonic_discrepancy(rows.discrepancy(slice(s, s + step)), b, labels, k)
                        for s in range(0, n, step)])
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
