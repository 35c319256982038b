"""k-means with a fixed number of clusters K (3C's ``main_kmeans.py``; also the
K-cluster start of HDC-style methods).

Objective: ``min sum_i ||x_i - c_{l(i)}||^2`` over labels l and centres c (Euclidean; with
``normalize`` the rows are L2-normalised first, as 3C does).  Backends:

* ``"torch"`` (CPU or GPU, any tensor device): greedy k-means++ seeding (first centre uniform;
  then ``2 + ln K`` candidates drawn with probability ``D(x)^2 / sum D^2``, D = distance to the
  nearest chosen centre, and the one minimising ``sum D^2`` is kept) or ``"random"`` (K distinct points), then Lloyd iterations: assign every point to its nearest
  centre (``||x||^2 - 2 x.c + ||c||^2``, computed in row blocks so no N x K array is larger than
  ``_BLOCK`` elements), move each centre to the mean of its points.  An empty cluster is re-seeded
  with the point farthest from its centre.  Stops after ``iters`` iterations, when no label changes,
  or when ``sum ||c_new - c||^2 <= tol * mean per-dimension variance of x * d`` (sklearn's rule).
* ``"faiss"``: ``faiss.Kmeans`` Lloyd iterations (no sub-sampling) from the same seeding
  (``init="random"``: faiss's own random init), then one exact assignment.
* ``"auto"``: faiss when importable, else torch.

All randomness comes from ``seed`` (a ``torch.Generator``), so a run is reproducible.
:func:`filter_small` turns clusters with fewer than ``min_size`` members into outliers (-1) and
renumbers the rest 0..C-1 in order of their centre index, as 3C's min-size-4 filter.
"""
from __future__ import annotations

import numpy as np
import torch

__all__ = ["kmeans", "filter_small", "greedy_kmeanspp"]

_BLOCK = 1 << 22  # elements of one N-block x K distance tile (16 MB in float32)


def _nearest(x, c, block=_BLOCK):
    """(index, squared distance) of the nearest centre for every row of x."""
    cn = (c * c).sum(1)
    rows = max(1, block // max(1, c.shape[0]))
    idx = torch.empty(x.shape[0], dtype=torch.int64, device=x.device)
    dmin = torch.empty(x.shape[0], dtype=x.dtype, device=x.device)
    for s in range(0, x.shape[0], rows):
        xb = x[s:s + rows]
        d = (xb * xb).sum(1, keepdim=True) - 2.0 * (xb @ c.T) + cn[None]
        m, i = d.min(1)
        idx[s:s + rows], dmin[s:s + rows] = i, m.clamp_min_(0)
    return idx, dmin


def greedy_kmeanspp(n, k, potential_rows, gen):
    """Indices of k seeds by greedy k-means++ on any potential (sklearn's variant): the first is
    uniform; each further seed draws ``2 + ln k`` candidates with probability ~ D (D = potential
    to the nearest chosen seed) and keeps the one that lowers ``sum D`` most.
    ``potential_rows(idx)`` returns the [len(idx), n] potential of every point to the points idx:
    squared Euclidean distance for k-means, the raw Jaccard distance for HDC."""
    trials = 2 + int(np.log(k))
    first = int(torch.randint(n, (1,), generator=gen))
    centres = [first]
    dmin = potential_rows(torch.tensor([first]))[0]
    for _ in range(1, k):
        total = float(dmin.sum())
        if total <= 0:                                  # all remaining points coincide
            rest = torch.ones(n, dtype=torch.bool)
            rest[centres] = False
            nxt = int(torch.nonzero(rest)[0])
            dmin = torch.minimum(dmin, potential_rows(torch.tensor([nxt]))[0])
        else:
            cand = torch.multinomial((dmin / total).double().cpu(), trials, replacement=True,
                                     generator=gen)
            d = torch.minimum(potential_rows(cand), dmin[None])
            best = int(torch.argmin(d.sum(1)))
            nxt, dmin = int(cand[best]), d[best]
        centres.append(nxt)
    return centres


def _init_pp(x, k, gen):
    """Greedy k-means++ seeds on the squared Euclidean distance (``greedy_kmeanspp``)."""
    xn = (x * x).sum(1)

    def sq_dist(idx):
        idx = idx.to(x.device)
        return (xn[None] - 2.0 * (x[idx] @ x.T) + xn[idx][:, None]).clamp_min_(0)

    return x[greedy_kmeanspp(x.shape[0], k, sq_dist, gen)].clone()


def _kmeans_torch(x, k, iters, gen, init, tol):
    n, d = x.shape
    if init == "k-means++":
        c = _init_pp(x, k, gen)
    elif init == "random":
        c = x[torch.randperm(n, generator=gen)[:k].to(x.device)].clone()
    else:
        raise ValueError(f"init must be 'k-means++' or 'random', got {init!r}")
    threshold = tol * float(x.var(0).mean()) * d if n > 1 else 0.0
    labels = None
    for _ in range(max(1, iters)):
        new, dmin = _nearest(x, c)
        if labels is not None and torch.equal(new, labels):
            break
        labels = new
        sums = torch.zeros_like(c).index_add_(0, labels, x)
        counts = torch.bincount(labels, minlength=k).to(x.dtype)
        empty = torch.nonzero(counts == 0).flatten()
        nc = sums / counts.clamp_min(1)[:, None]
        if empty.numel():                               # re-seed with the farthest points
            far = torch.argsort(dmin, descending=True, stable=True)[:empty.numel()]
            nc[empty] = x[far]
        shift = float(((nc - c) ** 2).sum())
        c = nc
        if shift <= threshold:
            break
    labels, _ = _nearest(x, c)
    return labels, c


def _kmeans_faiss(x, k, iters, seed, init):
    import faiss  # noqa: PLC0415

    xs = np.ascontiguousarray(x.detach().cpu().numpy(), dtype=np.float32)
    km = faiss.Kmeans(xs.shape[1], k, niter=int(iters), seed=int(seed), verbose=False,
                      min_points_per_centroid=1, max_points_per_centroid=max(1, xs.shape[0]))
    start = None
    if init == "k-means++":
        gen = torch.Generator().manual_seed(int(seed))
        start = np.ascontiguousarray(_init_pp(x, k, gen).cpu().numpy(), dtype=np.float32)
    elif init != "random":
        raise ValueError(f"init must be 'k-means++' or 'random', got {init!r}")
    km.train(xs, init_centroids=start)
    _, idx = km.index.search(xs, 1)
    return torch.from_numpy(idx[:, 0].astype(np.int64)), torch.from_numpy(km.centroids.copy())


def kmeans(features, k: int, iters: int = 100, seed: int = 0, backend: str = "torch",
           init: str = "k-means++", tol: float = 1e-4, normalize: bool = False):
    """Labels (np.int64, 0..k-1) and centres (np.float32, k x d) of ``features`` (N x d)."""
    x = torch.as_tensor(features).detach().float()
    if x.ndim != 2:
        raise ValueError(f"features must be N x d, got shape {tuple(x.shape)}")
    if not 1 <= int(k) <= x.shape[0]:
        raise ValueError(f"k-means needs 1 <= K <= N, got K={k} for N={x.shape[0]} samples "
                         f"(CLUSTER.NUM_CLUSTERS)")
    if normalize:
        x = torch.nn.functional.normalize(x, dim=1)
    if backend == "auto":
        try:
            import faiss  # noqa: F401, PLC0415
            backend = "faiss"
        except ImportError:
            backend = "torch"
    if backend == "faiss":
        labels, c = _kmeans_faiss(x, int(k), iters, seed, init)
    elif backend == "torch":
        gen = torch.Generator().manual_seed(int(seed))
        labels, c = _kmeans_torch(x, int(k), iters, gen, init, tol)
    else:
        raise ValueError(f"k-means backend must be 'torch', 'faiss' or 'auto', got {backend!r}")
    return labels.cpu().numpy().astype(np.int64), c.cpu().numpy().astype(np.float32)


def filter_small(labels, min_size: int) -> np.ndarray:
    """Clusters with fewer than ``min_size`` members become -1; the rest are renumbered 0..C-1."""
    labels = np.asarray(labels, dtype=np.int64)
    out = np.full(labels.shape, -1, np.int64)
    valid = labels >= 0
    if not valid.any():
        return out
    counts = np.bincount(labels[valid])
    keep = counts >= max(1, int(min_size))
    new_id = np.cumsum(keep) - 1
    good = valid.copy()
    good[valid] = keep[labels[valid]]
    out[good] = new_id[labels[good]]
    return out
