"""The exact kNN backends agree, and ``auto`` picks the fastest one for the device."""
import numpy as np
import pytest

from unreidusl.cluster.knn import auto_backend, faiss_available, knn_search

BACKENDS = ["torch", "numpy", "faiss"]


def test_faiss_is_installed_by_default():
    """faiss-cpu is a requirement: the faiss paths are tested by the plain test command."""
    assert faiss_available()


def test_auto_picks_by_device_and_size(monkeypatch):
    """The measured rule (docs/benchmarks.md): torch on CUDA and for wide self-searches of several
    tiles on the CPU (half the matrix products), faiss otherwise."""
    assert auto_backend("cuda", 100, 64) == auto_backend("cuda:1", 100, 64, True) == "torch"
    assert auto_backend("cpu", 2000, 2048, True) == auto_backend(None, 12000, 512, True) == "faiss"
    assert auto_backend("cpu", 12000, 2048, self_search=False) == "faiss"
    assert auto_backend("cpu", 12000, 2048, self_search=True) == "torch"
    import unreidusl.cluster.knn as knn

    monkeypatch.setattr(knn, "faiss_available", lambda: False)
    assert auto_backend("cpu", 2000, 64) == "torch"


def test_backends_give_identical_results_on_exact_distances():
    """Small-integer features: every squared distance is exact in float32, so the backends must
    return the very same lists, ties broken by the smaller index."""
    rng = np.random.default_rng(0)
    x = rng.integers(-3, 4, size=(300, 16)).astype(np.float32)
    out = {b: knn_search(x, k=12, backend=b) for b in BACKENDS + ["auto"]}
    for b in BACKENDS[1:] + ["auto"]:
        np.testing.assert_array_equal(out[b][1], out["torch"][1], err_msg=b)
        np.testing.assert_array_equal(out[b][0], out["torch"][0], err_msg=b)
    q = rng.integers(-3, 4, size=(40, 16)).astype(np.float32)
    ref = knn_search(q, x, k=7, backend="torch")
    for b in BACKENDS[1:]:
        np.testing.assert_array_equal(knn_search(q, x, k=7, backend=b)[1], ref[1], err_msg=b)


def test_backends_agree_on_float_features():
    """Unit float features: the same neighbour sets, distances equal up to float32 rounding."""
    rng = np.random.default_rng(1)
    x = rng.normal(size=(500, 64)).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    d_ref, i_ref = knn_search(x, k=20, backend="torch")
    for b in BACKENDS[1:]:
        d, i = knn_search(x, k=20, backend=b)
        assert np.abs(d - d_ref).max() < 1e-5
        assert all(set(a) == set(c) for a, c in zip(i, i_ref)), b


@pytest.mark.parametrize("backend", BACKENDS)
def test_row_maxima(backend):
    rng = np.random.default_rng(2)
    x = rng.normal(size=(120, 8)).astype(np.float32)
    _, _, row_max = knn_search(x, k=5, backend=backend, return_max=True)
    full = ((x[:, None] - x[None]) ** 2).sum(-1)
    np.testing.assert_allclose(row_max, full.max(1), rtol=1e-4)
