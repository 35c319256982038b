"""ICDBSCAN: labels identical to the straightforward pure-Python reference on random problems
(sparse / dense, every constraint format, RELAXED >= 0 and < 0), compiled == Python loop, no
mutation of the inputs, hand-checked semantics, and the registered clusterer."""
import copy

import numpy as np
import pytest
import scipy.sparse as sp

from unreidusl.cluster import CLUSTERER_REGISTRY
from unreidusl.cluster.dbscan import dbscan_sparse
from unreidusl.cluster.icdbscan import (cannot_link_matrix, compiled_available, icdbscan,
                                        icdbscan_reference, pair_values)
from unreidusl.config import get_cfg

RELAXED = (0.0, 0.5, 1.0, 3.0, -1.0, -0.5, -2.0)


def random_problem(rng, n=None):
    """Sparse D (stored = d < 1, explicit zeros from duplicated points) + symmetric or not CL."""
    n = int(n or rng.integers(4, 70))
    centres = rng.random((max(1, n // 8), 2)) * 4
    x = centres[rng.integers(0, len(centres), n)] + rng.normal(0, 0.15, (n, 2))
    dup = rng.random(n) < 0.1
    x[dup] = x[rng.integers(0, n, dup.sum())]              # identical rows: D = 0 off the diagonal
    d = np.sqrt(((x[:, None] - x[None]) ** 2).sum(-1)) / 2
    np.fill_diagonal(d, 0)
    r, c = np.nonzero(d < 1)
    dist = sp.csr_matrix((d[r, c].astype(np.float32), (r, c)), shape=(n, n))
    near = (d < 0.4) & (rng.random((n, n)) < rng.uniform(0.0, 0.4))
    cl = near | (rng.random((n, n)) < rng.uniform(0.0, 0.1))
    if rng.random() < 0.7:
        cl = cl | cl.T
    if rng.random() < 0.8:
        np.fill_diagonal(cl, False)
    return dist, cl


def test_matches_reference_on_random_problems():
    rng = np.random.default_rng(0)
    constrained = 0
    for trial in range(120):
        dist, cl = random_problem(rng)
        eps = float(rng.uniform(0.03, 0.35))
        ms = int(rng.integers(1, 6))
        rel = RELAXED[trial % len(RELAXED)]
        ref = icdbscan_reference(dist, eps, ms, sp.csr_matrix(cl), rel)
        fmt = trial % 3                                     # CSR, list of sets, dict of sets
        cons = (sp.csr_matrix(cl) if fmt == 0 else
                [set(np.flatnonzero(row).tolist()) for row in cl] if fmt == 1 else
                {i: set(np.flatnonzero(row).tolist()) for i, row in enumerate(cl)})
        got = icdbscan(dist, eps, ms, cons, rel)
        np.testing.assert_array_equal(got, ref, err_msg=f"trial {trial}")
        py = icdbscan(dist, eps, ms, cons, rel, use_compiled=False)
        np.testing.assert_array_equal(py, ref, err_msg=f"trial {trial} (Python loop)")
        free = icdbscan(dist, eps, ms, None, rel)
        constrained += not np.array_equal(free, ref)
    assert constrained > 20          # the constraints change the answer in many trials


def test_dense_input_same_as_sparse():
    rng = np.random.default_rng(1)
    for trial in range(30):
        dist, cl = random_problem(rng)
        dense = np.ones(dist.shape)                          # unstored = 1
        coo = dist.tocoo()
        dense[coo.row, coo.col] = coo.data
        rel = RELAXED[trial % len(RELAXED)]
        np.testing.assert_array_equal(icdbscan(dense, 0.2, 3, sp.csr_matrix(cl), rel),
                                      icdbscan(dist, 0.2, 3, sp.csr_matrix(cl), rel))
        np.testing.assert_array_equal(icdbscan(dense, 0.2, 3, sp.csr_matrix(cl), rel),
                                      icdbscan_reference(dense, 0.2, 3, sp.csr_matrix(cl), rel))


@pytest.mark.skipif(not compiled_available(), reason="icdbscan_cy not built")
def test_compiled_equals_python_loop_at_larger_n():
    rng = np.random.default_rng(2)
    dist, cl = random_problem(rng, 600)
    for rel in (0.0, -1.0):
        np.testing.assert_array_equal(icdbscan(dist, 0.2, 4, sp.csr_matrix(cl), rel),
                                      icdbscan(dist, 0.2, 4, sp.csr_matrix(cl), rel,
                                               use_compiled=False))


def test_inputs_are_not_modified_and_repeated_calls_agree():
    rng = np.random.default_rng(3)
    dist, cl = random_problem(rng, 60)
    sets = [set(np.flatnonzero(row).tolist()) for row in cl]
    sets_before = copy.deepcopy(sets)
    csr = sp.csr_matrix(cl)
    csr_before = csr.copy()
    dist_before = dist.copy()
    first = icdbscan(dist, 0.25, 3, sets, -1.0)
    for _ in range(3):                    # the reference bug: constraints drift across epochs
        np.testing.assert_array_equal(icdbscan(dist, 0.25, 3, sets, -1.0), first)
        np.testing.assert_array_equal(icdbscan(dist, 0.25, 3, csr, 0.0),
                                      icdbscan(dist, 0.25, 3, csr_before, 0.0))
    assert sets == sets_before
    assert (csr != csr_before).nnz == 0 and np.array_equal(csr.indptr, csr_before.indptr)
    assert (dist != dist_before).nnz == 0


def test_cannot_linked_points_never_share_a_cluster():
    rng = np.random.default_rng(4)
    for _ in range(20):
        dist, cl = random_problem(rng, 80)
        cl = cl | cl.T
        np.fill_diagonal(cl, False)
        labels = icdbscan(dist, 0.3, 2, sp.csr_matrix(cl), 0.0)
        r, c = np.nonzero(cl)
        same = (labels[r] == labels[c]) & (labels[r] >= 0)
        # r = 0 keeps every constraint except between identical points (D = 0)
        assert np.all(pair_values(dist, r[same], c[same]) == 0)


def chain(n=8, step=0.1):
    x = np.arange(n) * step
    d = np.abs(x[:, None] - x[None])
    r, c = np.nonzero(d < 1)
    return sp.csr_matrix((d[r, c], (r, c)), shape=(n, n))


def test_hand_example_constraints_split_a_chain():
    dist = chain()                                         # 0.1 apart; eps 0.15: N(i) = i-1, i, i+1
    assert icdbscan(dist, 0.15, 2).tolist() == [0] * 8
    # 0 and 4 cannot link: the cluster grown from 0 stops before 4, the rest forms a second one
    cl = {i: set() for i in range(8)}
    cl[0], cl[4] = {4}, {0}
    assert icdbscan(dist, 0.15, 2, cl).tolist() == [0, 0, 0, 0, 1, 1, 1, 1]
    assert icdbscan(dist, 0.15, 3, cl).tolist() == [0, 0, 0, 0, 1, 1, 1, 1]


def test_too_small_cluster_is_undone():
    # x = 0, .05, .1, .15 | .25 | .35 with eps .16: 4 is a border of the first group, 5 hangs on 4
    x = np.array([0.0, 0.05, 0.1, 0.15, 0.25, 0.35])
    d = np.abs(x[:, None] - x[None])
    dist = sp.csr_matrix(d)
    dist.setdiag(0.0)
    assert icdbscan(dist, 0.16, 4).tolist() == [0] * 6
    # 0 and 4 cannot link: 4 stays out of cluster 0; the cluster grown from 4 gets {4, 5} only
    # (2 and 3 are taken), fewer than min_samples = 4, so it is undone and the id not consumed
    cl = [{4}, set(), set(), set(), {0}, set()]
    assert icdbscan(dist, 0.16, 4, cl).tolist() == [0, 0, 0, 0, -1, -1]
    assert icdbscan_reference(dist, 0.16, 4, cl).tolist() == [0, 0, 0, 0, -1, -1]


def test_relaxation_semantics_by_hand():
    dist = chain(6)
    cl = {i: set() for i in range(6)}
    cl[2], cl[3] = {3}, {2}                                # neighbours at distance 0.1
    split = [0, 0, 0, 1, 1, 1]
    assert icdbscan(dist, 0.15, 2, cl, relaxed=0.0).tolist() == split
    assert icdbscan(dist, 0.15, 2, cl, relaxed=1.0).tolist() == [0] * 6      # 0.1 <= 1*eps: dropped
    assert icdbscan(dist, 0.15, 2, cl, relaxed=0.5).tolist() == split        # 0.1 > 0.075: kept
    assert icdbscan(dist, 0.15, 2, cl, relaxed=-1.0).tolist() == split       # 0.1 <= eps: kept
    assert icdbscan(dist, 0.15, 2, cl, relaxed=-0.5).tolist() == [0] * 6     # 0.1 > 0.075: dropped
    # a far constraint (0 vs 5, d = 0.5) only survives a negative r with |r| eps >= 0.5
    cl = {i: set() for i in range(6)}
    cl[0], cl[5] = {5}, {0}
    assert icdbscan(dist, 0.15, 2, cl, relaxed=-1.0).tolist() == [0] * 6
    assert icdbscan(dist, 0.15, 2, cl, relaxed=-4.0).tolist() != [0] * 6


def test_without_constraints_equals_dbscan_on_separated_blobs():
    rng = np.random.default_rng(5)
    for _ in range(10):
        dist, _ = random_problem(rng, 60)
        np.testing.assert_array_equal(icdbscan(dist, 0.2, 1), dbscan_sparse(dist, 0.2, 1))


def test_errors_and_formats():
    dist = chain(5)
    with pytest.raises(ValueError, match="expected \\(5, 5\\)"):
        icdbscan(dist, 0.15, 2, sp.csr_matrix((4, 4), dtype=bool))
    with pytest.raises(ValueError, match="outside"):
        icdbscan(dist, 0.15, 2, [{7}, set(), set(), set(), set()])
    with pytest.raises(ValueError, match="sets for 3 points"):
        icdbscan(dist, 0.15, 2, [set(), set(), set()])
    with pytest.raises(ValueError, match="unstored"):
        icdbscan(dist, 1.0, 2)
    m = cannot_link_matrix([{1, 1}, {0}, set(), set(), set()], 5)
    assert m.dtype == bool and m.nnz == 2
    assert icdbscan(sp.csr_matrix((0, 0)), 0.5, 2).shape == (0,)


def test_registered_clusterer_and_plain_dbscan_interface():
    cfg = get_cfg()
    cfg.CLUSTER.EPS, cfg.CLUSTER.MIN_SAMPLES, cfg.CLUSTER.TOC.RELAXED = 0.15, 2, 0.0
    dist = chain()
    cl = sp.csr_matrix(([True, True], ([0, 4], [4, 0])), shape=(8, 8))
    ic = CLUSTERER_REGISTRY.get("ICDBSCAN")(cfg)
    assert ic(dist, eps=0.15, cannot_link=cl).labels.tolist() == [0, 0, 0, 0, 1, 1, 1, 1]
    assert ic(dist, eps=0.15).labels.tolist() == [0] * 8
    result = CLUSTERER_REGISTRY.get("DBSCAN")(cfg)(dist, eps=0.15)
    assert result.labels.tolist() == [0] * 8 and result.eps == 0.15 and result.core.all()
