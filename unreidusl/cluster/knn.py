"""k-nearest-neighbour search under the squared Euclidean distance (exact; approximate: ``ann.py``).

``knn_search`` returns, for every query row ``q_i``, the ``k`` database rows with the smallest

    d(i, j) = ||q_i||^2 + ||x_j||^2 - 2 <q_i, x_j>      (clamped at 0; float32)

sorted ascending by ``(d, j)``: **ties are broken by the smaller database index**.

Memory is ``O(block * M + N * k)``; no ``N x M`` matrix is ever formed.

Backends
--------
``"torch"`` (default)
    Blocked ``torch.mm`` (CPU or CUDA).  For a self-search the distance matrix is symmetric, so
    only the tiles on and above the block diagonal are multiplied and each off-diagonal tile feeds
    the candidate lists of both its row block and its column block (half the FLOPs); after the
    diagonal tiles, a tile only keeps the entries below each row's current k+1-th distance
    (``knn_tiles.py``).  The self
    distance is set to exactly 0.
``"numpy"``
    The same blocked algorithm with numpy/BLAS only (no torch import; useful where importing
    torch is too heavy).
``"faiss"``
    ``faiss.knn`` on the CPU, or a ``GpuIndexFlatL2`` when faiss was built with GPUs and ``device``
    is CUDA.  Distances are clamped at 0 and the self distance is set to 0, as for the other
    backends.
``"faiss_ivf"``, ``"faiss_hnsw"``
    Approximate candidates (faiss IVF or HNSW index, optional PCA), re-scored exactly and returned
    under the same contract (``ann.py``); every such search logs its recall@k on sampled rows.
``"auto"``
    Above ``ann.auto_above`` database rows (``CLUSTER.ANN.AUTO_ABOVE``) ``"faiss_ivf"``, and a log
    line says so. Otherwise the fastest exact backend for the device and the problem
    (:func:`auto_backend`): on a CUDA device ``"torch"`` (blocked GPU matmul, no host round trip);
    on the CPU ``"torch"`` for a self-search of more than one tile (N > 4096) of wide features
    (d >= 1024), where computing only the tiles on and above the diagonal halves the matrix
    products that dominate, and ``"faiss"`` (a requirement, ``faiss-cpu``) otherwise, whose top-k
    selection is cheaper; ``"torch"`` when faiss cannot be imported. Measured on our 2-core CPU
    (``benchmarks/bench_knn.py``, docs/benchmarks.md). The exact backends' distances agree to
    ~1e-6 (float32 rounding of ``|q|^2 + |x|^2 - 2<q, x>``), so two candidates whose distances
    agree to that precision may swap places, within the list or across the k-th place (up to 17 of
    12,000 rows in the benchmark); otherwise the lists are identical.

Exact ties: every exact backend keeps ``k + 1`` candidates.  Rows whose ``k``-th and ``(k+1)``-th
candidate distances are equal (a tie straddling the cut) are recomputed against the whole database
and ordered by ``(d, j)``, so the documented tie rule holds whatever order the backend's top-k
returns.
"""
from __future__ import annotations

import logging

import numpy as np

from ..utils.progress import progress
from .ann import ANN_BACKENDS, AnnParams, ann_search, describe
from .knn_tiles import self_candidates

__all__ = ["knn_search", "faiss_available", "auto_backend", "BACKENDS"]

logger = logging.getLogger(__name__)

BACKENDS = ("torch", "numpy", "faiss") + ANN_BACKENDS + ("auto",)


def faiss_available() -> bool:
    """True when ``import faiss`` works."""
    try:
        import faiss  # noqa: F401
    except Exception:  # pragma: no cover - depends on the environment
        return False
    return True


def auto_backend(device=None, n: int = 0, dim: int = 0, self_search: bool = False) -> str:
    """The backend ``backend="auto"`` runs (module docstring) on ``device`` for ``n`` query rows of
    ``dim`` features: "torch" on CUDA, and on the CPU for a self-search with ``n`` > 4096 and ``dim``
    >= 1024; else "faiss" when installed, else "torch"."""
    if device is not None and str(device).startswith("cuda"):
        return "torch"
    if not faiss_available():
        return "torch"
    if self_search and n > 4096 and dim >= 1024:
        return "torch"
    return "faiss"


def _import_faiss():
    try:
        import faiss
    except ImportError as exc:
        raise ImportError(
            "knn_search(backend='faiss') needs the 'faiss' package (pip install faiss-cpu, or "
            "faiss-gpu); use backend='torch' or 'auto' instead") from exc
    return faiss


def _is_torch(x) -> bool:
    return type(x).__module__.startswith("torch")


def _to_numpy32(x) -> np.ndarray:
    if _is_torch(x):
        x = x.detach().to("cpu").numpy()
    return np.ascontiguousarray(np.asarray(x, dtype=np.float32))


def _check_2d(q, db):
    if q.ndim != 2 or db.ndim != 2 or q.shape[1] != db.shape[1]:
        raise ValueError(f"query and database must be [N,d] and [M,d]; got {tuple(q.shape)} and "
                         f"{tuple(db.shape)}")


# ----------------------------------------------------------------------------------------------
# Candidate bookkeeping shared by the blocked backends (arrays are torch or numpy, see ``ops``).
# ----------------------------------------------------------------------------------------------
class _TorchOps:
    def __init__(self, device):
        import torch
        self.t = torch
        self.device = device

    def prep(self, x):
        t = self.t
        if not _is_torch(x):
            x = t.from_numpy(np.ascontiguousarray(np.asarray(x, dtype=np.float32)))
        return x.detach().to(device=self.device, dtype=t.float32).contiguous()

    def sqnorm(self, x):
        return (x * x).sum(1)

    def dist(self, a, an, b, bn):
        d = self.t.mm(a, b.t()).mul_(-2.0)
        d.add_(an[:, None]).add_(bn[None, :]).clamp_(min=0.0)
        return d

    def tile(self, a2, an, b, bn):
        """``dist`` without the clamp at 0, ``a2`` = -2·a (an exact scaling)."""
        return self.t.mm(a2, b.t()).add_(an[:, None]).add_(bn[None, :])

    def zero_diag(self, d):
        d.fill_diagonal_(0.0)

    def topk_rows(self, d, kk, offset):
        v, i = self.t.topk(d, kk, dim=1, largest=False, sorted=False)
        return v, i.add_(offset)

    def amax(self, d, dim):
        return d.amax(dim).to("cpu").numpy()

    def to_np(self, v, i):
        return (v.to("cpu").numpy().astype(np.float32, copy=False),
                i.to("cpu").numpy().astype(np.int64))


class _NumpyOps:
    def prep(self, x):
        return _to_numpy32(x)

    def sqnorm(self, x):
        return np.einsum("ij,ij->i", x, x)

    def dist(self, a, an, b, bn):
        d = a @ b.T
        d *= -2.0
        d += an[:, None]
        d += bn[None, :]
        np.maximum(d, 0.0, out=d)
        return d

    def tile(self, a2, an, b, bn):
        d = a2 @ b.T
        d += an[:, None]
        d += bn[None, :]
        return d

    def zero_diag(self, d):
        np.fill_diagonal(d, 0.0)

    def topk_rows(self, d, kk, offset):
        if kk < d.shape[1]:
            i = np.argpartition(d, kk - 1, axis=1)[:, :kk]
        else:
            i = np.broadcast_to(np.arange(d.shape[1]), d.shape).copy()
        return np.take_along_axis(d, i, 1), i.astype(np.int64) + offset

    def amax(self, d, dim):
        return d.max(axis=dim)

    def to_np(self, v, i):
        return v.astype(np.float32, copy=False), i.astype(np.int64, copy=False)


def _blocked_candidates(ops, q, db, self_search, kk, block, row_max=None, desc="kNN"):
    """Top-``kk`` candidates (unsorted) per query row with blocked distance tiles (a self-search:
    the symmetric tiles of ``knn_tiles.py``).

    ``row_max`` (float32 [N], optional) is updated in place with each row's largest distance."""
    if self_search:
        return self_candidates(ops, q, kk, block, row_max, desc)
    n = q.shape[0]
    qn = ops.sqnorm(q)
    dbn = ops.sqnorm(db)
    out = []
    bar = progress(total=n, desc=desc, unit="row")
    for s in range(0, n, block):
        e = min(s + block, n)
        d = ops.dist(q[s:e], qn[s:e], db, dbn)
        if row_max is not None:
            np.maximum(row_max[s:e], ops.amax(d, 1), out=row_max[s:e])
        out.append(ops.to_np(*ops.topk_rows(d, kk, 0)))
        del d
        bar.update(e - s)
    bar.close()
    vals = np.concatenate([o[0] for o in out], 0)
    idx = np.concatenate([o[1] for o in out], 0)
    return vals, idx


def _sort_and_fix_ties(vals, idx, k, recompute_row):
    """Order candidates by (d, j); recompute rows with a tie across the k-th boundary exactly."""
    # row-wise lexicographic (value, index) order via two stable sorts
    o1 = np.argsort(idx, axis=1, kind="stable")
    vals = np.take_along_axis(vals, o1, 1)
    idx = np.take_along_axis(idx, o1, 1)
    o2 = np.argsort(vals, axis=1, kind="stable")
    vals = np.take_along_axis(vals, o2, 1)
    idx = np.take_along_axis(idx, o2, 1)
    if vals.shape[1] > k:
        tied = np.flatnonzero(vals[:, k - 1] == vals[:, k])
        for r in tied:
            d = recompute_row(int(r))
            o = np.lexsort((np.arange(d.shape[0]), d))[:k]
            vals[r, :k] = d[o]
            idx[r, :k] = o
    return np.ascontiguousarray(vals[:, :k]), np.ascontiguousarray(idx[:, :k])


def _faiss_candidates(q, db, kk, device):
    faiss = _import_faiss()
    dev = str(device) if device is not None else "cpu"
    if dev.startswith("cuda") and getattr(faiss, "get_num_gpus", lambda: 0)() > 0:
        res = faiss.StandardGpuResources()
        gpu_id = int(dev.split(":")[1]) if ":" in dev else 0
        cfg = faiss.GpuIndexFlatConfig()
        cfg.device = gpu_id
        index = faiss.GpuIndexFlatL2(res, db.shape[1], cfg)
        index.add(db)
        vals, idx = index.search(q, kk)
    else:
        vals, idx = faiss.knn(q, db, kk)
    return np.asarray(vals, dtype=np.float32), np.asarray(idx, dtype=np.int64)


def _row_max(q, db, self_search, m, block_size, desc):
    """Each query row's largest distance to the whole database (one blocked NumPy pass)."""
    row_max = np.zeros(q.shape[0], np.float32)
    _blocked_candidates(_NumpyOps(), q, db, self_search, 1,
                        block_size or (4096 if self_search else max(1, (1 << 24) // m)),
                        row_max, desc=f"{desc} (row maxima)")
    return row_max


def knn_search(query, database=None, k: int = 30, backend: str = "torch", block_size=None,
               device=None, return_max: bool = False, desc: str = "kNN", ann=None):
    """kNN under squared L2 (see module docstring): exact, or approximate with ``faiss_ivf`` /
    ``faiss_hnsw``.

    Args:
        query: ``[N, d]`` float32 array or tensor.
        database: ``[M, d]``; ``None`` (or the very same object) means a self-search, in which
            self is normally column 0 (it is the first of the rows at distance 0).
        k: neighbours per row; clipped to ``M``.
        backend: ``"torch"`` | ``"numpy"`` | ``"faiss"`` | ``"auto"``.
        block_size: tile edge (self-search) or query rows per block; default 4096 on CPU, 8192 on
            GPU.
        device: torch device for the torch backend (default: the query tensor's device, else CPU);
            for faiss, a CUDA device selects the GPU index when faiss has GPUs.
        return_max: also return ``max_dist2 [N] float32``, each row's largest distance to the whole
            database (tracked in the same blocked pass; one extra NumPy pass with faiss).
        desc: the label of the progress bar (``utils/progress.py``).
        ann: :class:`~unreidusl.cluster.ann.AnnParams` of the approximate backends and of ``auto``'s
            switch to them (default: ``AnnParams()``).

    Returns:
        ``(dist2 [N, k] float32 ascending, idx [N, k] int64)``; ties broken by smaller index.
        With ``return_max``: ``(dist2, idx, max_dist2)``.
    """
    if backend not in BACKENDS:
        raise ValueError(f"unknown knn backend {backend!r}; expected one of {BACKENDS}")
    self_search = database is None or database is query
    if device is None and _is_torch(query):
        device = query.device
    ann = ann or AnnParams()
    m = query.shape[0] if self_search else database.shape[0]
    if backend == "auto" and 0 < ann.auto_above < m:
        backend = "faiss_ivf"
        logger.info("kNN backend auto: %d database rows > %d (CLUSTER.ANN.AUTO_ABOVE), approximate %s",
                    m, ann.auto_above, describe(backend, ann, m, int(query.shape[-1])))
    if backend == "auto":
        backend = auto_backend(device, int(query.shape[0]), int(query.shape[1]) if query.ndim == 2
                               else 0, self_search)
    if backend in ANN_BACKENDS:
        dist2, idx, _ = ann_search(query, None if self_search else database, k, backend, ann, desc)
        if not return_max:
            return dist2, idx
        q = _to_numpy32(query)
        return dist2, idx, _row_max(q, q if self_search else _to_numpy32(database), self_search,
                                    m, block_size, desc)
    q_np = _to_numpy32(query) if backend != "torch" else None
    if backend == "faiss":
        _import_faiss()
    n = query.shape[0]
    if query.ndim != 2:
        raise ValueError(f"query must be 2-D, got shape {tuple(query.shape)}")
    k = int(min(k, m))
    if k < 1:
        raise ValueError("k must be >= 1 and the database non-empty")
    kk = min(k + 1, m)

    if backend == "faiss":
        q = q_np
        db = q if self_search else _to_numpy32(database)
        _check_2d(q, db)
        with progress(total=n, desc=desc, unit="row") as bar:
            vals, idx = _faiss_candidates(q, db, kk, device)
            bar.update(n)
        np.maximum(vals, 0.0, out=vals)
        if self_search:
            vals[idx == np.arange(n)[:, None]] = 0.0
        dbn = np.einsum("ij,ij->i", db, db)

        def recompute_row(r):
            d = np.maximum(dbn + float(q[r] @ q[r]) - 2.0 * (db @ q[r]), 0.0)
            if self_search:
                d[r] = 0.0
            return d.astype(np.float32)

        out = _sort_and_fix_ties(vals, idx, k, recompute_row)
        return out + (_row_max(q, db, self_search, m, block_size, desc),) if return_max else out

    if backend == "torch":
        import torch
        dev = torch.device(device) if device is not None else torch.device("cpu")
        ops = _TorchOps(dev)
        default_block = 8192 if dev.type == "cuda" else 4096
    else:
        ops = _NumpyOps()
        default_block = 4096
    q = ops.prep(query)
    db = q if self_search else ops.prep(database)
    _check_2d(q, db)
    if block_size:
        block = int(block_size)
    elif self_search:
        block = default_block
    else:  # query rows per block: a block of distances holds about default_block**2 floats
        block = max(1, default_block * default_block // m)
    row_max = np.zeros(n, np.float32) if return_max else None
    vals, idx = _blocked_candidates(ops, q, db, self_search, kk, block, row_max, desc)
    dbn = []  # computed on the first tie only

    def recompute_row(r):
        if not dbn:
            dbn.append(ops.sqnorm(db))
        d = ops.dist(q[r:r + 1], ops.sqnorm(q[r:r + 1]), db, dbn[0])
        if self_search:
            d[0, r] = 0.0
        if not isinstance(d, np.ndarray):
            d = d.to("cpu").numpy()
        return np.asarray(d[0], dtype=np.float32)

    out = _sort_and_fix_ties(vals, idx, k, recompute_row)
    return out + (row_max,) if return_max else out
