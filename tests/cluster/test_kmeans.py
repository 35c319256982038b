"""k-means (torch and faiss backends), the min-size filter and the registered KMeans clusterer."""
import numpy as np
import pytest
import torch
from sklearn.metrics import adjusted_rand_score

from unreidusl.cluster import CLUSTERER_REGISTRY
from unreidusl.cluster.kmeans import filter_small, kmeans
from unreidusl.cluster.pipeline import PseudoLabeler
from unreidusl.config import get_cfg


def blobs(n=400, k=6, d=8, seed=0, spread=0.05):
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(k, d)) * 3
    y = np.arange(n) % k
    return (centres[y] + rng.normal(scale=spread, size=(n, d))).astype(np.float32), y


def test_torch_backend_recovers_blobs_and_is_reproducible():
    x, y = blobs()
    labels, centres = kmeans(x, 6, seed=0, backend="torch")
    assert adjusted_rand_score(y, labels) == 1.0
    assert centres.shape == (6, 8) and labels.dtype == np.int64
    again, _ = kmeans(torch.from_numpy(x), 6, seed=0, backend="torch")
    np.testing.assert_array_equal(labels, again)
    # every point sits with its nearest centre
    d = ((x[:, None] - centres[None]) ** 2).sum(-1)
    np.testing.assert_array_equal(labels, d.argmin(1))
    rnd, _ = kmeans(x, 6, seed=1, backend="torch", init="random", iters=50)
    assert adjusted_rand_score(y, rnd) > 0.6


def test_faiss_backend():
    pytest.importorskip("faiss")
    x, y = blobs(seed=1)
    labels, centres = kmeans(x, 6, seed=0, backend="faiss")
    assert adjusted_rand_score(y, labels) > 0.8
    assert centres.shape == (6, 8)


def test_normalize_and_errors():
    x, y = blobs(seed=2)
    labels, centres = kmeans(x * 10, 6, seed=0, normalize=True)
    np.testing.assert_allclose(np.linalg.norm(centres, axis=1), 1.0, rtol=0.05)
    with pytest.raises(ValueError, match="NUM_CLUSTERS"):
        kmeans(x[:5], 6)
    with pytest.raises(ValueError, match="backend"):
        kmeans(x, 3, backend="sklearn")
    same = np.zeros((10, 3), np.float32)                 # all points identical: still K labels
    assert set(kmeans(same, 3, seed=0)[0]) <= {0, 1, 2}


def test_filter_small():
    assert filter_small([0, 0, 1, 2, 2, 2, -1, 3], 2).tolist() == [0, 0, -1, 1, 1, 1, -1, -1]
    assert filter_small([-1, -1], 2).tolist() == [-1, -1]
    assert filter_small([4, 4, 4], 1).tolist() == [0, 0, 0]


def test_registered_clusterer_takes_features():
    cfg = get_cfg()
    cfg.CLUSTER.NAME, cfg.CLUSTER.NUM_CLUSTERS, cfg.CLUSTER.KMEANS_BACKEND = "KMeans", 6, "torch"
    cfg.CLUSTER.MIN_SAMPLES = 4
    km = CLUSTERER_REGISTRY.get("KMeans")(cfg)
    assert km.input_kind == "features"
    x, y = blobs()
    torch.manual_seed(0)
    assert adjusted_rand_score(y, km(None, features=torch.from_numpy(x)).labels) == 1.0
    # through the pseudo-labeller: no distance is computed
    from unreidusl.data import Sample
    samples = [Sample((f"img/{i}.jpg",), -1, 0) for i in range(len(x))]
    labeler = PseudoLabeler(cfg, samples)
    assert labeler.distance is None
    result = labeler(torch.from_numpy(x))
    assert adjusted_rand_score(y, result.labels) == 1.0 and result.eps is None
    cfg.CLUSTER.SCP.ENABLED = True
    with pytest.raises(ValueError, match="distance-based clusterer"):
        PseudoLabeler(cfg, samples)
