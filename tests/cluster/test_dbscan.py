"""dbscan_sparse must reproduce sklearn's precomputed DBSCAN label for label."""
import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.cluster import DBSCAN

from unreidusl.cluster.dbscan import dbscan_sparse
from unreidusl.cluster.jaccard import jaccard_distance


def sk_labels(dist, eps, min_samples):
    return DBSCAN(eps=eps, min_samples=min_samples, metric="precomputed").fit_predict(dist)


def densify(dist, fill=1.0):
    n = dist.shape[0]
    dense = np.full((n, n), fill)
    dense[np.repeat(np.arange(n), np.diff(dist.indptr)), dist.indices] = dist.data
    return dense


def clustered(n, seed, n_dup=0, sigma=0.8):
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((max(1, n // 10), 32))
    x = centres[rng.integers(0, centres.shape[0], n)] + sigma * rng.standard_normal((n, 32)) / 4
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    if n_dup:
        x[rng.integers(0, n, n_dup)] = x[rng.integers(0, n, n_dup)]
    return x.astype(np.float32)


@pytest.fixture(scope="module")
def jaccard_cases():
    out = []
    for seed, n, n_dup in [(0, 240, 0), (1, 330, 12), (2, 90, 30)]:
        out.append(jaccard_distance(clustered(n, seed, n_dup), k1=20, k2=6))
    return out


@pytest.mark.parametrize("eps", [1e-6, 0.1, 0.3, 0.45, 0.6, 0.75, 0.9, 0.999])
@pytest.mark.parametrize("min_samples", [1, 2, 4, 9])
def test_matches_sklearn_on_jaccard(jaccard_cases, eps, min_samples):
    for dist in jaccard_cases:
        labels = dbscan_sparse(dist, eps, min_samples)
        assert labels.dtype == np.int64
        np.testing.assert_array_equal(labels, sk_labels(densify(dist), eps, min_samples))
        np.testing.assert_array_equal(labels, sk_labels(dist, eps, min_samples))


def test_extremes(jaccard_cases):
    dist = jaccard_cases[0]
    n = dist.shape[0]
    nonzero_min = dist.data[dist.data > 0].min()
    eps = nonzero_min / 2                                    # only exact zeros are neighbours
    labels = dbscan_sparse(dist, eps, 2)
    np.testing.assert_array_equal(labels, sk_labels(densify(dist), eps, 2))
    rows = np.repeat(np.arange(n), np.diff(dist.indptr))
    off_diag_zero = (dist.data == 0) & (rows != dist.indices)
    if not off_diag_zero.any():
        assert np.all(labels == -1)
    # a matrix whose stored distances all exceed eps: everything is noise
    far = dist.copy()
    far.data = 0.5 + far.data / 4
    far.setdiag(0)
    assert np.all(dbscan_sparse(far, 0.4, 2) == -1)
    assert np.all(sk_labels(densify(far), 0.4, 2) == -1)
    # every pair within eps: everything merges into one cluster
    every_pair = sp.csr_matrix(np.full((n, n), 0.5) - 0.5 * np.eye(n))
    assert np.all(dbscan_sparse(every_pair, 0.6, 4) == 0)
    labels = dbscan_sparse(dist, 0.999, 4)
    np.testing.assert_array_equal(labels, sk_labels(densify(dist), 0.999, 4))
    assert labels.max() + 1 < 5 and np.all(labels >= 0)    # (near) total merge
    # min_samples = 1: every point is core, clusters = connected components of the eps-graph
    from scipy.sparse.csgraph import connected_components
    graph = far.copy()
    graph.data = (graph.data <= 0.6).astype(float)
    graph.eliminate_zeros()
    ncomp, comp = connected_components(graph, directed=False)
    labels = dbscan_sparse(far, 0.6, 1)
    assert labels.max() + 1 == ncomp and np.all(labels >= 0)
    np.testing.assert_array_equal(labels, sk_labels(densify(far), 0.6, 1))


def test_explicit_zeros_and_duplicates():
    # four identical points (distance 0, stored explicitly) + two isolated points
    rows = [0, 0, 0, 1, 1, 1, 2, 2, 2, 3, 3, 3, 4, 5]
    cols = [1, 2, 3, 0, 2, 3, 0, 1, 3, 0, 1, 2, 4, 5]
    dist = sp.csr_matrix((np.zeros(len(rows), np.float32), (rows, cols)), shape=(6, 6))
    assert dist.nnz == len(rows)                             # explicit zeros kept
    labels = dbscan_sparse(dist, 0.1, 4)
    np.testing.assert_array_equal(labels, [0, 0, 0, 0, -1, -1])
    np.testing.assert_array_equal(labels, sk_labels(dist, 0.1, 4))


def test_border_point_takes_first_cluster():
    # two cores chains A (0..4) and B (5..9) both within eps of border point 10
    n = 11
    dense = np.ones((n, n))
    for grp in (range(0, 5), range(5, 10)):
        for i in grp:
            for j in grp:
                dense[i, j] = 0.1
    dense[10, [4, 9]] = dense[[4, 9], 10] = 0.2
    np.fill_diagonal(dense, 0.0)
    sparse = sp.csr_matrix((dense[dense < 1], np.nonzero(dense < 1)), shape=(n, n))
    for order in (np.arange(n), np.r_[5:10, 0:5, 10]):       # relabel to swap cluster order
        p = np.asarray(order)
        d = sparse[p][:, p].tocsr()
        labels = dbscan_sparse(d, 0.3, 5)
        np.testing.assert_array_equal(labels, sk_labels(densify(d), 0.3, 5))


@pytest.mark.parametrize("seed", range(4))
def test_asymmetric_matrix(seed):
    dist = sp.random(150, 150, density=0.06, random_state=seed, format="csr")
    for eps in (0.1, 0.4, 0.8):
        for ms in (1, 3, 5):
            np.testing.assert_array_equal(dbscan_sparse(dist, eps, ms), sk_labels(dist, eps, ms))


def test_diagonal_handling_and_input_forms():
    rng = np.random.default_rng(0)
    dense = rng.random((40, 40))
    dense = np.where(dense < 0.3, dense, 0.0)
    dense = np.minimum(dense, dense.T)
    np.fill_diagonal(dense, 0.0)
    dist = sp.csr_matrix(dense)                              # diagonal unstored -> counts as 0
    for eps in (0.05, 0.15, 0.25):
        expect = sk_labels(dist, eps, 3)
        np.testing.assert_array_equal(dbscan_sparse(dist, eps, 3), expect)
        np.testing.assert_array_equal(dbscan_sparse(dist.tocoo(), eps, 3), expect)
        unsorted = dist.copy()
        unsorted.indices = unsorted.indices.copy()
        for r in range(40):                                  # reverse each row's entries
            s, e = unsorted.indptr[r], unsorted.indptr[r + 1]
            unsorted.indices[s:e] = unsorted.indices[s:e][::-1]
            unsorted.data[s:e] = unsorted.data[s:e][::-1]
        unsorted.has_sorted_indices = False
        np.testing.assert_array_equal(dbscan_sparse(unsorted, eps, 3), expect)
    assert dbscan_sparse(sp.csr_matrix((0, 0)), 0.5).shape == (0,)
    with pytest.raises(TypeError):
        dbscan_sparse(dense, 0.5)
