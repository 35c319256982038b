"""Exact kNN backends and the sparse k-reciprocal Jaccard distance against dense references."""
import builtins

import numpy as np
import pytest
import scipy.sparse as sp

from unreidusl.cluster.jaccard import (jaccard_distance, jaccard_distance_dense_reference,
                                       reciprocal_sets)
from unreidusl.cluster.knn import faiss_available, knn_search


def make_features(n, d=32, per_cluster=12, sigma=0.8, seed=0, n_dup=0, scale=1.0):
    """Clustered near-unit features on a 1/64 grid.

    The grid makes every squared distance exactly representable in float32, so the float32 kNN and
    the float64 reference rank identically, exact ties included (ties -> smaller index).
    """
    rng = np.random.default_rng(seed)
    n_centres = max(1, n // per_cluster)
    centres = rng.standard_normal((n_centres, d))
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    x = centres[rng.integers(0, n_centres, n)] + sigma / np.sqrt(d) * rng.standard_normal((n, d))
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    x = np.round(x * scale * 64) / 64
    if n_dup:
        x[rng.integers(0, n, n_dup)] = x[rng.integers(0, n, n_dup)]
    return x.astype(np.float32)


def densify(dist):
    """Dense copy with unstored entries = 1, and the mask of stored entries."""
    n = dist.shape[0]
    stored = np.zeros((n, n), bool)
    rows = np.repeat(np.arange(n), np.diff(dist.indptr))
    stored[rows, dist.indices] = True
    dense = np.ones((n, n))
    dense[rows, dist.indices] = dist.data
    return dense, stored


def brute_knn(q, db, k, self_search):
    d = ((q.astype(np.float64)[:, None, :] - db.astype(np.float64)[None]) ** 2).sum(-1)
    if self_search:
        np.fill_diagonal(d, 0.0)
    order = np.argsort(d, axis=1, kind="stable")[:, :k]     # ties -> smaller index
    return np.take_along_axis(d, order, 1), order


# ------------------------------------------------------------------------------------- kNN
@pytest.mark.parametrize("backend", ["torch", "numpy"])
@pytest.mark.parametrize("block_size", [None, 64, 97, 7])
def test_knn_matches_bruteforce_with_ties(backend, block_size):
    """Block 7 < k + 1: the diagonal tiles cannot fill a row's candidates, so its threshold stays
    infinite until the off-diagonal tiles have been compacted (``knn_tiles.py``)."""
    rng = np.random.default_rng(3)
    x = rng.integers(-2, 3, (500, 6)).astype(np.float32)     # small integers: many exact ties
    x[100:112] = x[7]                                        # duplicates of row 7
    dist, idx = knn_search(x, k=15, backend=backend, block_size=block_size)
    ref_d, ref_i = brute_knn(x, x, 15, True)
    assert dist.dtype == np.float32 and idx.dtype == np.int64 and idx.shape == (500, 15)
    np.testing.assert_array_equal(idx, ref_i)
    np.testing.assert_allclose(dist, ref_d, atol=1e-6)
    assert np.all(np.diff(dist, axis=1) >= 0)
    # query/database search
    y = rng.integers(-2, 3, (60, 6)).astype(np.float32)
    dist, idx = knn_search(y, x, k=15, backend=backend, block_size=block_size)
    ref_d, ref_i = brute_knn(y, x, 15, False)
    np.testing.assert_array_equal(idx, ref_i)
    np.testing.assert_allclose(dist, ref_d, atol=1e-6)


def test_knn_self_search_keeps_only_entries_below_the_thresholds(monkeypatch):
    """The symmetric tiles keep, after the diagonal ones, only the entries below the rows' k+1-th
    distance so far: far fewer than the N x N entries, and the same lists as brute force."""
    from unreidusl.cluster import knn_tiles

    x = make_features(600, d=16, per_cluster=10, sigma=0.6, seed=5)
    kept = []
    real_add = knn_tiles._Block.add
    monkeypatch.setattr(knn_tiles._Block, "add",
                        lambda self, r, c, v: (kept.append(len(r)), real_add(self, r, c, v))[1])
    dist, idx = knn_search(x, k=10, backend="numpy", block_size=100)
    ref_d, ref_i = brute_knn(x, x, 10, True)
    np.testing.assert_array_equal(idx, ref_i)
    np.testing.assert_allclose(dist, ref_d, atol=1e-6)
    assert sum(kept) < 0.2 * 600 * 600


def test_knn_float_data_and_torch_input():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(0)
    x = rng.standard_normal((400, 24)).astype(np.float32)
    dist, idx = knn_search(x, k=10)
    ref_d, ref_i = brute_knn(x, x, 10, True)
    np.testing.assert_array_equal(idx, ref_i)
    np.testing.assert_allclose(dist, ref_d, rtol=1e-4, atol=1e-4)
    assert np.all(idx[:, 0] == np.arange(400)) and np.all(dist[:, 0] == 0)
    dist_t, idx_t = knn_search(torch.from_numpy(x), k=10, block_size=128)
    np.testing.assert_array_equal(idx_t, idx)
    # k larger than the database is clipped
    d_small, i_small = knn_search(x[:5], k=30)
    assert i_small.shape == (5, 5)


@pytest.mark.skipif(not faiss_available(), reason="faiss is not installed")
def test_knn_faiss_matches_torch():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((600, 32)).astype(np.float32)
    d_t, i_t = knn_search(x, k=20, backend="torch")
    d_f, i_f = knn_search(x, k=20, backend="faiss")
    np.testing.assert_array_equal(i_f, i_t)
    np.testing.assert_allclose(d_f, d_t, atol=1e-4)
    xi = rng.integers(-2, 3, (300, 5)).astype(np.float32)       # exact ties
    np.testing.assert_array_equal(knn_search(xi, k=12, backend="faiss")[1],
                                  knn_search(xi, k=12, backend="torch")[1])
    assert np.array_equal(knn_search(x, k=20, backend="auto")[1], i_t)


def test_knn_missing_faiss_error(monkeypatch):
    real_import = builtins.__import__

    def fake_import(name, *args, **kwargs):
        if name == "faiss" or name.startswith("faiss."):
            raise ImportError("No module named 'faiss'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", fake_import)
    x = np.zeros((10, 4), np.float32)
    with pytest.raises(ImportError, match="faiss"):
        knn_search(x, k=3, backend="faiss")
    assert knn_search(x, k=3, backend="auto")[1].shape == (10, 3)   # falls back to torch
    with pytest.raises(ValueError):
        knn_search(x, k=3, backend="nope")


# --------------------------------------------------------------------------------- Jaccard
CASES = [  # n, k1, k2, per_cluster, sigma, n_dup
    (200, 30, 6, 12, 0.8, 0),
    (300, 20, 1, 12, 0.8, 0),        # no query expansion
    (150, 10, 3, 10, 0.8, 25),       # duplicate rows
    (100, 5, 2, 8, 3.0, 0),          # weakly clustered
    (250, 30, 6, 10 ** 6, 1.0, 0),   # unclustered (one centre, isotropic noise)
    (120, 30, 6, 12, 0.5, 40),       # tight clusters + many duplicates
    (60, 25, 6, 6, 0.8, 0),          # odd round(k1/2) = 12 (numpy rounding)
]


@pytest.mark.parametrize("n,k1,k2,per,sigma,n_dup", CASES)
def test_sparse_equals_dense_reference(n, k1, k2, per, sigma, n_dup):
    x = make_features(n, per_cluster=per, sigma=sigma, seed=n + k1, n_dup=n_dup)
    dist = jaccard_distance(x, k1=k1, k2=k2)
    ref = jaccard_distance_dense_reference(x, k1=k1, k2=k2)
    assert isinstance(dist, sp.csr_matrix) and dist.dtype == np.float32
    assert dist.has_sorted_indices and dist.shape == (n, n)
    dense, stored = densify(dist)
    np.testing.assert_allclose(dense, ref, atol=1e-6, rtol=0)
    assert np.all(ref[~stored] == 1.0)             # every unstored entry is exactly 1
    assert np.all(ref[stored] < 1.0)               # nothing stored that is 1
    assert np.all(stored.diagonal()) and np.all(dist.diagonal() == 0)
    assert np.array_equal(stored, stored.T)        # D is symmetric
    assert dist.data.min() >= 0.0
    if n_dup:
        dup_pairs = np.argwhere((ref == 0) & ~np.eye(n, dtype=bool))
        assert np.all(stored[dup_pairs[:, 0], dup_pairs[:, 1]])   # explicit zeros are kept


def test_search_k_and_encode_dist_options():
    x = make_features(180, per_cluster=10, seed=5, scale=1.5)      # not unit norm
    for kwargs in [dict(search_k=21), dict(encode_dist="dot"),
                   dict(search_k=25, encode_dist="dot")]:
        dist = jaccard_distance(x, k1=20, k2=4, **kwargs)
        ref = jaccard_distance_dense_reference(x, k1=20, k2=4, **kwargs)
        np.testing.assert_allclose(densify(dist)[0], ref, atol=1e-6, rtol=0)
    with pytest.raises(ValueError):
        jaccard_distance(x, k1=3, k2=6)


def test_max_dist_precomputed_knn_and_torch_input():
    x = make_features(220, seed=9)
    full = jaccard_distance(x)
    cut = jaccard_distance(x, max_dist=0.5)
    dense_full, _ = densify(full)
    dense_cut, stored_cut = densify(cut)
    expect = (dense_full <= 0.5) | np.eye(220, dtype=bool)
    assert np.array_equal(stored_cut, expect)
    np.testing.assert_array_equal(dense_cut[expect], dense_full[expect])
    pre = jaccard_distance(x, knn=knn_search(x, k=30))
    assert (pre != full).nnz == 0
    torch = pytest.importorskip("torch")
    assert (jaccard_distance(torch.from_numpy(x)) != full).nnz == 0
    assert (jaccard_distance(x, knn_backend="numpy") != full).nnz == 0


def test_reciprocal_sets_definition():
    rank = np.array([[0, 1, 2], [1, 0, 3], [2, 3, 0], [3, 2, 0]])
    r = reciprocal_sets(rank, 2).toarray()       # R(i, 1): first 2 columns
    expect = np.array([[1, 1, 0, 0], [1, 1, 0, 0], [0, 0, 1, 1], [0, 0, 1, 1]])
    np.testing.assert_array_equal(r, expect)
    r3 = reciprocal_sets(rank, 3).toarray()
    assert r3[0, 2] == 1 and r3[2, 0] == 1                    # 0 and 2 list each other
    assert r3[1, 3] == 0 and r3[3, 1] == 0                    # 1 lists 3, 3 does not list 1
    assert r3[3, 0] == 0 and r3.diagonal().all()


def test_tiny_inputs():
    for n in (1, 2, 4, 7):
        x = make_features(n, d=8, seed=n)
        dist = jaccard_distance(x, k1=30, k2=6)          # k1, k2 > N are clipped to N columns
        ref = jaccard_distance_dense_reference(x, k1=30, k2=6)
        np.testing.assert_allclose(densify(dist)[0], ref, atol=1e-6, rtol=0)
        assert dist.shape == (n, n) and np.all(dist.diagonal() == 0)
    assert jaccard_distance(np.zeros((0, 8), np.float32)).shape == (0, 0)


# ------------------------------------------------------------------- compiled Jaccard kernel
def _query_expanded(n=700, seed=3):
    from unreidusl.cluster import jaccard as jac

    x = make_features(n, per_cluster=10, sigma=1.0, seed=seed, n_dup=5)
    d2, idx = knn_search(x, k=20)
    rank = np.ascontiguousarray(idx)
    v = jac._encode(x, jac._expanded_sets(rank, 20), d2, rank, "sqeuclidean")
    return jac._query_expansion(v, rank, 6)


@pytest.mark.skipif(not __import__("unreidusl.cluster.jaccard", fromlist=["_KERNEL"])._KERNEL.available(),
                    reason="jaccard_cy extension not built (run `pip install -e .`)")
@pytest.mark.parametrize("max_dist, rows", [(None, None), (0.5, None), (None, (123, 456)), (0.9, (0, 1))])
def test_compiled_kernel_equals_the_numpy_loop(monkeypatch, max_dist, rows):
    """Same CSR arrays bit for bit (same float32 mins, same float64 summation order), for long rows
    (the scan of the marks) and short ones (the sort), and for a row range."""
    from unreidusl.cluster import jaccard as jac

    v = _query_expanded()
    monkeypatch.setattr(jac, "_KERNEL_ROWS", 97)          # several kernel calls, offsets included
    fast = jac._jaccard_from_v(v.copy(), max_dist, rows=rows)
    slow = jac._jaccard_from_v(v.copy(), max_dist, rows=rows, use_compiled=False)
    for name in ("indptr", "indices", "data"):
        np.testing.assert_array_equal(getattr(fast, name), getattr(slow, name))
    assert fast.has_sorted_indices and fast.nnz > fast.shape[0]
    long_rows = np.diff(fast.indptr) * 16 > v.shape[0]    # rows written by the scan path
    assert long_rows.any() if max_dist is None else not long_rows.all()


@pytest.mark.skipif(not __import__("unreidusl.cluster.jaccard", fromlist=["_KERNEL"])._KERNEL.available(),
                    reason="jaccard_cy extension not built (run `pip install -e .`)")
def test_compiled_kernel_refuses_inconsistent_inputs():
    from unreidusl.cluster import jaccard_cy

    i32, i64, f32 = np.int32, np.int64, np.float32
    ptr, idx, val = np.array([0, 1, 2], i64), np.array([0, 1], i32), np.ones(2, f32)
    out = np.empty(8, i32), np.empty(8, f32), np.zeros(2, i64)
    assert jaccard_cy.jaccard_rows(ptr, idx, val, ptr, idx, val, 0, 2, 1.0, *out) == 2
    bad = [(np.array([0, 1, 2], i64), np.array([0, 5], i32)),          # index past N
           (np.array([0, 2, 1], i64), np.array([0, 1], i32)),          # decreasing pointer
           (np.array([0, 1, 9], i64), np.array([0, 1], i32))]          # pointer past the entries
    for p, i in bad:
        with pytest.raises(ValueError):
            jaccard_cy.jaccard_rows(p, i, val, ptr, idx, val, 0, 2, 1.0, *out)
        with pytest.raises(ValueError):
            jaccard_cy.jaccard_rows(ptr, idx, val, p, i, val, 0, 2, 1.0, *out)
    with pytest.raises(ValueError, match="too small"):
        jaccard_cy.jaccard_rows(ptr, idx, val, ptr, idx, val, 0, 2, 1.0, np.empty(1, i32),
                                np.empty(1, f32), np.zeros(2, i64))


def test_missing_compiled_kernel_falls_back_with_one_log_line(caplog):
    import logging

    from unreidusl.utils.compiled import CompiledKernel

    log = logging.getLogger("unreidusl.test_compiled")
    missing = CompiledKernel("unreidusl.cluster.no_such_kernel", "f", "API", 1, "the NumPy loop", log)
    stale = CompiledKernel("numpy", "zeros", "__version__", -1, "the NumPy loop", log)
    with caplog.at_level(logging.INFO, logger="unreidusl.test_compiled"):
        assert [missing.get(), missing.get(), stale.get()] == [None, None, None]
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 2 and "cannot import unreidusl.cluster.no_such_kernel" in lines[0]
    assert "stale numpy build" in lines[1] and all("pip install -e ." in m for m in lines)
