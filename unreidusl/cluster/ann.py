"""Approximate k-nearest-neighbour search with faiss: ``knn_search(backend="faiss_ivf" | "faiss_hnsw")``.

The output is that of the exact backends (``knn.py``): per query row ``q_i``, k database rows sorted by

    d(i, j) = ||q_i||^2 + ||x_j||^2 - 2 <q_i, x_j>      (clamped at 0; float32)

and then by ``j``; in a self-search each row's own index comes first at distance 0 (after identical
rows of smaller index, as in the exact backends). Only the candidates are approximate:

1. optional PCA to ``pca_dim`` dimensions: ``y = (x - mu) W`` with W the leading eigenvectors of
   the covariance of <= 20,000 random rows, found by subspace iteration (:class:`Pca`; skipped when
   ``pca_dim`` is not below ``d`` or exceeds those rows);
2. the index: ``faiss_ivf`` = ``IndexIVFFlat`` with ``nlist`` lists (0: ``round(min(16 sqrt(M),
   M / 16))``, lists of about an identity's size, see below), its k-means trained on <= 16 nlist
   random rows (fixed seed), ``nprobe`` lists visited per query;
   ``faiss_hnsw`` = ``IndexHNSWFlat`` (``hnsw_m`` links per node, ``ef_construction``, ``ef_search``);
3. ``C = max(k + 1, ceil(refine k))`` candidates per query, re-scored exactly in the original space
   (``d`` above, from the features, so PCA does not distort the returned distances), ordered by
   ``(d, j)`` and cut to k; self is put in column 0 at distance 0 (inserted if the index missed it).
   A row with fewer than k candidates (IVF lists that are nearly empty) is searched exactly;
4. recall@k: the lists of ``recall_queries`` random query rows are compared with an exact search of
   those rows over the whole database (blocked), logged and returned.

Why ``16 sqrt(M)`` lists: the clusters that matter are identities of tens of samples. With the usual
``4 sqrt(M)`` lists (112 rows each at M = 200,000) a list mixes several clusters and a query's cluster
mates spread over lists that 16 probes miss: recall@30 0.841 against 0.959 with ``16 sqrt(M)`` lists
on the clustered features of ``benchmarks/bench_ann.py`` (32 per cluster, 2048-d, PCA 128), whose
exact lists hold 0.966 cluster mates (docs/benchmarks.md).

The database is read in chunks of ``chunk`` rows (PCA, index, norms) and the queries are searched in
chunks, so a ``numpy.memmap`` (``utils/feature_file.py``) is never copied whole. Memory: the index
(``M x pca_dim`` floats for IVF, plus the graph for HNSW), the training sample, ``O(chunk x (d + C))``
and the ``N x k`` result.
"""
from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass

import numpy as np

from ..utils.progress import progress

__all__ = ["AnnParams", "ANN_BACKENDS", "Pca", "ann_search", "describe"]

logger = logging.getLogger(__name__)

ANN_BACKENDS = ("faiss_ivf", "faiss_hnsw")
_PCA_SAMPLE = 20000          # rows the PCA is trained on
_TRAIN_PER_LIST = 16         # IVF k-means sample: at most this many rows per list
_GATHER = 1 << 22            # floats per block of gathered candidate rows (16 MB)
_PCA_ITERS = 4               # subspace iterations of the PCA
_PCA_EXTRA = 32              # extra directions iterated along with the pca_dim wanted ones


@dataclass(frozen=True)
class AnnParams:
    """Parameters of the approximate backends (``CLUSTER.ANN.*``, docs/clustering.md)."""

    nlist: int = 0
    nprobe: int = 16
    hnsw_m: int = 32
    ef_search: int = 128
    ef_construction: int = 80
    pca_dim: int = 128
    refine: float = 1.5
    recall_queries: int = 1000
    auto_above: int = 100000
    seed: int = 0
    chunk: int = 16384

    @classmethod
    def from_cfg(cls, node) -> "AnnParams":
        """From the ``CLUSTER.ANN`` config node."""
        return cls(nlist=node.NLIST, nprobe=node.NPROBE, hnsw_m=node.HNSW_M, ef_search=node.EF_SEARCH,
                   ef_construction=node.EF_CONSTRUCTION, pca_dim=node.PCA_DIM, refine=node.REFINE,
                   recall_queries=node.RECALL_QUERIES, auto_above=node.AUTO_ABOVE)


def _nlist(p: AnnParams, m: int) -> int:
    return max(1, min(m, p.nlist or int(round(min(16.0 * math.sqrt(m), m / 16.0)))))


def _uses_pca(p: AnnParams, m: int, dim: int) -> bool:
    return 0 < p.pca_dim < dim and p.pca_dim <= min(m, _PCA_SAMPLE)


def describe(backend: str, p: AnnParams, m: int, dim: int) -> str:
    """``"faiss_ivf nlist=1789 nprobe=16 pca=128 refine=1.5"``: the parameters a search of ``m``
    database rows of ``dim`` features runs with."""
    if backend == "faiss_ivf":
        nl = _nlist(p, m)
        text = f"faiss_ivf nlist={nl} nprobe={min(p.nprobe, nl)}"
    else:
        text = f"faiss_hnsw M={p.hnsw_m} efSearch={p.ef_search} efConstruction={p.ef_construction}"
    if _uses_pca(p, m, dim):
        text += f" pca={p.pca_dim}"
    return text + f" refine={p.refine:g}"


class Pca:
    """``y = (x - mu) W``: ``mu`` the mean and ``W [d, dim]`` the leading eigenvectors of the
    covariance ``C`` of ``sample``, from ``Q <- orth(C Q)`` iterated from a random start (with
    ``_PCA_EXTRA`` more columns) and the eigenvectors of ``Q^T C Q``: a few ``d x d x dim``
    products instead of a full ``d x d`` eigendecomposition."""

    def __init__(self, sample: np.ndarray, dim: int, rng) -> None:
        self.mean = sample.mean(0, dtype=np.float64)
        sample = sample - self.mean.astype(np.float32)
        cov = (sample.T @ sample).astype(np.float64) / max(1, sample.shape[0] - 1)
        q = rng.standard_normal((cov.shape[0], min(cov.shape[0], dim + _PCA_EXTRA)))
        for _ in range(_PCA_ITERS):
            q, _ = np.linalg.qr(cov @ q)
        values, vectors = np.linalg.eigh(q.T @ cov @ q)
        self.w = np.ascontiguousarray((q @ vectors[:, ::-1][:, :dim]).astype(np.float32))
        self.shift = (self.mean @ self.w).astype(np.float32)

    def apply(self, block: np.ndarray) -> np.ndarray:
        out = block @ self.w
        out -= self.shift
        return out


def _import_faiss():
    try:
        import faiss
    except ImportError as exc:
        raise ImportError("the approximate kNN backends need the 'faiss' package (pip install "
                          "faiss-cpu); use an exact backend instead") from exc
    return faiss


def _as_rows(x) -> np.ndarray:
    """A 2-D numpy view of ``x`` (a CPU tensor is not copied, a memmap stays mapped)."""
    if type(x).__module__.startswith("torch"):
        x = x.detach().cpu().numpy()
    x = x if isinstance(x, np.ndarray) else np.asarray(x)
    if x.ndim != 2:
        raise ValueError(f"features must be 2-D, got shape {x.shape}")
    return x


def _read(x, start, stop) -> np.ndarray:
    return np.ascontiguousarray(x[start:stop], dtype=np.float32)


def _gather(x, idx) -> np.ndarray:
    """Rows ``x[idx]`` as float32 (fancy indexing reads only those rows of a memmap)."""
    return np.ascontiguousarray(x[idx], dtype=np.float32)


def _sample(m, size, rng) -> np.ndarray:
    return np.arange(m) if size >= m else np.sort(rng.choice(m, size, replace=False))


def _project(pca, block):
    return block if pca is None else pca.apply(block)


def _projected_rows(x, rows, pca, chunk) -> np.ndarray:
    """``PCA(x[rows])``, gathered and projected ``chunk`` rows at a time."""
    parts = [_project(pca, _gather(x, rows[s:s + chunk])) for s in range(0, rows.shape[0], chunk)]
    return np.ascontiguousarray(np.concatenate(parts), dtype=np.float32)


def _build_index(faiss, backend, x, pca, p, rng, xn, bar, times):
    """Train the index on a sample, then add every row in chunks (filling ``xn`` = ||x_j||^2);
    the seconds of both go to ``times["train"]`` and ``times["add"]``."""
    t0 = time.perf_counter()
    m = x.shape[0]
    dim = pca.w.shape[1] if pca is not None else x.shape[1]
    if backend == "faiss_ivf":
        nlist = _nlist(p, m)
        index = faiss.IndexIVFFlat(faiss.IndexFlatL2(dim), dim, nlist)
        index.cp.seed = int(p.seed)
        index.cp.min_points_per_centroid = min(_TRAIN_PER_LIST, index.cp.min_points_per_centroid)
        index.nprobe = min(int(p.nprobe), nlist)
        index.train(_projected_rows(x, _sample(m, _TRAIN_PER_LIST * nlist, rng), pca, p.chunk))
    else:
        index = faiss.IndexHNSWFlat(dim, int(p.hnsw_m))
        index.hnsw.efConstruction = int(p.ef_construction)
    t1 = time.perf_counter()
    for s in range(0, m, p.chunk):
        block = _read(x, s, min(m, s + p.chunk))
        xn[s:s + block.shape[0]] = np.einsum("ij,ij->i", block, block)
        index.add(_project(pca, block))
        bar.update(block.shape[0])
    times.update(train=t1 - t0, add=time.perf_counter() - t1)
    return index


def _order(dist, cand, k):
    """Rows sorted by (d, j), cut to k columns."""
    o = np.argsort(cand, axis=1, kind="stable")
    dist, cand = np.take_along_axis(dist, o, 1), np.take_along_axis(cand, o, 1)
    o = np.argsort(dist, axis=1, kind="stable")[:, :k]
    return np.take_along_axis(dist, o, 1), np.take_along_axis(cand, o, 1)


def _rescore(qc, cand, x, xn, rows, k):
    """Exact ``d`` of the candidates ``cand`` (-1 = none) of the query rows ``qc``, self (global row
    numbers ``rows``, self-search only) at distance 0 in front; ordered by (d, j), k columns.
    Missing entries come last at distance inf."""
    b, c = cand.shape
    valid = cand >= 0
    safe = np.where(valid, cand, 0)
    dist = np.empty((b, c), np.float32)
    step = max(1, _GATHER // (c * qc.shape[1]))
    for s in range(0, b, step):
        rows_g = _gather(x, safe[s:s + step].ravel()).reshape(-1, c, qc.shape[1])
        dist[s:s + step] = np.matmul(rows_g, qc[s:s + step, :, None])[:, :, 0]
    dist *= -2.0
    dist += np.einsum("ij,ij->i", qc, qc)[:, None]
    dist += xn[safe]
    np.maximum(dist, 0.0, out=dist)
    if rows is not None:
        valid &= cand != rows[:, None]
        cand = np.concatenate([rows[:, None], np.where(valid, cand, -1)], 1)
        dist = np.concatenate([np.zeros((b, 1), np.float32), dist], 1)
        valid = np.concatenate([np.ones((b, 1), bool), valid], 1)
    dist[~valid] = np.inf
    return _order(dist, cand, k)


def _exact_rows(faiss, qs, x, k, chunk):
    """Exact k nearest database rows of the query rows ``qs`` (indices; blocked over ``x``)."""
    m = x.shape[0]
    best_d = np.empty((qs.shape[0], 0), np.float32)
    best_i = np.empty((qs.shape[0], 0), np.int64)
    for s in range(0, m, chunk):
        block = _read(x, s, min(m, s + chunk))
        d, i = faiss.knn(qs, block, min(k, block.shape[0]))
        best_d, best_i = np.concatenate([best_d, d], 1), np.concatenate([best_i, i + s], 1)
        if best_d.shape[1] > k:
            keep = np.argpartition(best_d, k - 1, axis=1)[:, :k]
            best_d = np.take_along_axis(best_d, keep, 1)
            best_i = np.take_along_axis(best_i, keep, 1)
    return _order(best_d, best_i, k)[1]


def ann_search(query, database=None, k: int = 30, backend: str = "faiss_ivf", params=None,
               desc: str = "kNN"):
    """Approximate kNN (module docstring).

    Args:
        query: ``[N, d]`` array, CPU tensor or ``numpy.memmap``.
        database: ``[M, d]``; ``None`` (or the very same object) means a self-search.
        k: neighbours per row; clipped to ``M``.
        backend: ``"faiss_ivf"`` | ``"faiss_hnsw"``.
        params: :class:`AnnParams` (default: the defaults of ``CLUSTER.ANN``).
        desc: the label of the progress bar.

    Returns:
        ``(dist2 [N, k] float32 ascending, idx [N, k] int64, info)``; ``info``: ``backend``,
        ``params`` (:func:`describe`), ``recall`` (recall@k on the sampled rows, None without
        any), ``queries`` (sampled rows), ``seconds`` (whole search) and ``phases`` (seconds of
        ``pca``, ``train``, ``add``, ``search``, ``rescore`` and ``recall``).
    """
    if backend not in ANN_BACKENDS:
        raise ValueError(f"unknown approximate backend {backend!r}; expected one of {ANN_BACKENDS}")
    p = params or AnnParams()
    faiss = _import_faiss()
    start = time.perf_counter()
    self_search = database is None or database is query
    q = _as_rows(query)
    x = q if self_search else _as_rows(database)
    if q.shape[1] != x.shape[1]:
        raise ValueError(f"query and database must be [N,d] and [M,d]; got {q.shape} and {x.shape}")
    n, (m, dim) = q.shape[0], x.shape
    k = int(min(k, m))
    if k < 1:
        raise ValueError("k must be >= 1 and the database non-empty")
    cand = int(min(m, max(k + 1, math.ceil(p.refine * k))))
    rng = np.random.default_rng(p.seed)
    pca = None
    if _uses_pca(p, m, dim):
        pca = Pca(_gather(x, _sample(m, _PCA_SAMPLE, rng)), int(p.pca_dim), rng)
    times = {"pca": time.perf_counter() - start, "search": 0.0, "rescore": 0.0, "recall": 0.0}
    xn = np.empty(m, np.float32)
    with progress(total=m + n, desc=desc, unit="row") as bar:
        index = _build_index(faiss, backend, x, pca, p, rng, xn, bar, times)
        if backend == "faiss_hnsw":
            index.hnsw.efSearch = max(int(p.ef_search), cand)
        dist2 = np.empty((n, k), np.float32)
        idx = np.empty((n, k), np.int64)
        for s in range(0, n, p.chunk):
            e = min(n, s + p.chunk)
            t0 = time.perf_counter()
            qc = _read(q, s, e)
            _, found = index.search(_project(pca, qc), cand)
            t1 = time.perf_counter()
            rows = np.arange(s, e) if self_search else None
            dist2[s:e], idx[s:e] = _rescore(qc, found.astype(np.int64), x, xn, rows, k)
            times["search"] += t1 - t0
            times["rescore"] += time.perf_counter() - t1
            bar.update(e - s)
    del index
    short = np.flatnonzero(~np.isfinite(dist2[:, -1]))       # fewer than k candidates found
    if short.shape[0]:
        qs = _gather(q, short)
        exact = _exact_rows(faiss, qs, x, min(m, k + 1), p.chunk)
        dist2[short], idx[short] = _rescore(qs, exact, x, xn, short if self_search else None, k)
    info = {"backend": backend, "params": describe(backend, p, m, dim), "recall": None, "queries": 0}
    if p.recall_queries > 0:
        t0 = time.perf_counter()
        sample = _sample(n, int(p.recall_queries), rng)
        exact = _exact_rows(faiss, _gather(q, sample), x, k, p.chunk)
        hits = sum(np.intersect1d(a, b).shape[0] for a, b in zip(exact, idx[sample]))
        info.update(recall=hits / float(exact.size), queries=int(sample.shape[0]))
        times["recall"] = time.perf_counter() - t0
        logger.info("approximate kNN (%s): recall@%d = %.3f on %d sampled queries", info["params"], k,
                    info["recall"], info["queries"])
    info.update(seconds=time.perf_counter() - start, phases=times)
    return dist2, idx, info
