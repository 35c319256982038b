"""Adaptive eps: the sparse computation (stored values + count of implicit ones) equals the dense
definition, hand-computed values, the frozen / per-call policy and its checkpoint state."""
import logging

import numpy as np
import pytest
import scipy.sparse as sp

from unreidusl.cluster.eps import AdaptiveEps, adaptive_eps


def dense_definition(d, rho):
    """The original: non-zero strictly-upper-triangular entries, sorted, mean of round(rho*M)."""
    u = np.triu(d, 1)
    v = np.sort(u[u != 0])
    k = max(1, int(round(rho * v.shape[0])))
    return float(v[:k].mean())


def random_sparse(rng, n=120, density=0.1):
    d = rng.random((n, n)) * 0.9
    d = (d + d.T) / 2
    d[rng.random((n, n)) > density] = 1.0
    d = np.minimum(d, d.T)
    d[5, 6] = d[6, 5] = 0.0                                 # a true zero: excluded
    np.fill_diagonal(d, 0)
    r, c = np.nonzero(d < 1)
    return d, sp.csr_matrix((d[r, c], (r, c)), shape=(n, n))


@pytest.mark.parametrize("rho", [1.6e-3, 1e-2, 0.05, 0.3, 0.9, 1.0])
def test_sparse_equals_dense_definition(rho, caplog):
    rng = np.random.default_rng(0)
    d, s = random_sparse(rng)
    want = dense_definition(d, rho)
    with caplog.at_level(logging.WARNING):
        assert adaptive_eps(s, rho) == pytest.approx(want, rel=1e-6)
    assert adaptive_eps(d, rho) == pytest.approx(want, rel=1e-6)
    stored_upper = np.count_nonzero(np.triu(d < 1, 1)) - 1
    needs_implicit = round(rho * (d.shape[0] * (d.shape[0] - 1) // 2 - 1)) > stored_upper
    assert ("unstored pairs" in caplog.text) == needs_implicit


def test_asymmetric_sparse_uses_the_upper_triangle():
    rng = np.random.default_rng(1)
    d, _ = random_sparse(rng, 60)
    d[np.tril_indices(60, -1)] = rng.random(60 * 59 // 2)  # lower triangle: anything
    r, c = np.nonzero(d < 1)
    s = sp.csr_matrix((d[r, c], (r, c)), shape=d.shape)
    assert adaptive_eps(s, 0.01) == pytest.approx(dense_definition(d, 0.01))


def test_hand_computed():
    d = np.array([[0.0, 0.2, 0.4, 1.0],
                  [0.2, 0.0, 0.0, 0.6],
                  [0.4, 0.0, 0.0, 1.0],
                  [1.0, 0.6, 1.0, 0.0]])
    # upper non-zero: 0.2, 0.4, 1.0, 0.6, 1.0 -> M = 5; rho = 0.4 -> k = 2 -> (0.2 + 0.4) / 2
    assert adaptive_eps(d, 0.4) == pytest.approx(0.3)
    s = sp.csr_matrix(([0.2, 0.4, 0.2, 0.0, 0.6, 0.4, 0.0, 0.6],
                       ([0, 0, 1, 1, 1, 2, 2, 3], [1, 2, 0, 2, 3, 0, 1, 1])), shape=(4, 4))
    assert adaptive_eps(s, 0.4) == pytest.approx(0.3)
    assert adaptive_eps(s, 0.8) == pytest.approx((0.2 + 0.4 + 0.6 + 1.0) / 4)  # one implicit 1
    with pytest.raises(ValueError, match="rho"):
        adaptive_eps(d, 0.0)
    with pytest.raises(ValueError, match="non-zero"):
        adaptive_eps(np.zeros((3, 3)), 0.5)


def test_policy_frozen_or_recomputed_and_state():
    rng = np.random.default_rng(2)
    _, a = random_sparse(rng)
    _, b = random_sparse(np.random.default_rng(3), density=0.3)
    frozen = AdaptiveEps(rho=0.05, frozen=True)
    first = frozen(a)
    assert frozen(b) == first
    moving = AdaptiveEps(rho=0.05, frozen=False)
    assert moving(a) == first and moving(b) != first
    state = frozen.state_dict()
    resumed = AdaptiveEps(rho=0.05, frozen=True)
    assert resumed.state_dict() == {}
    resumed.load_state_dict(state)
    assert resumed(b) == first                     # a resumed run keeps the first epoch's eps
