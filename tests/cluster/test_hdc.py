"""HDC (3C's Harmonic Discrepancy Clustering): its kernels on hand-computed
examples, the vectorised discrepancy against the reference's loop, whole runs, and the clusterer in
the pseudo-label pipeline with the DBSCAN warm-up."""
import numpy as np
import pytest
import torch
from sklearn.metrics import adjusted_rand_score

from unreidusl.cluster.hdc import anchor_distances, harmonic_discrepancy, hdc, peripheral_mask, relocate_empty
from unreidusl.cluster.jaccard import jaccard_distance
from unreidusl.cluster.kmeans import greedy_kmeanspp
from unreidusl.cluster.pipeline import PseudoLabeler
from unreidusl.config import get_cfg
from unreidusl.utils.segment import segment_argmax


def test_segment_argmax_first_maximum_per_group():
    # row [3, 5, 5, 1] with groups [0, 1, 1, 0]: group 0 max 3 at 0; group 1 max 5, first at 1;
    # group 2 is empty: -inf at index N = 4
    best, index = segment_argmax(torch.tensor([3.0, 5.0, 5.0, 1.0]), torch.tensor([0, 1, 1, 0]), 3)
    assert best[:2].tolist() == [3.0, 5.0] and best[2] == float("-inf")
    assert index.tolist() == [0, 1, 4]


def test_harmonic_discrepancy_hand_computed():
    # H(a, b) = ab / (a + b); b = [1, .5, .25], labels [0, 1, 1]
    # row 0, cluster 1: H(.2, .5) = .1429 < H(.5, .25) = .1667 -> k* = 2, HD = A[0, 2] = .5
    # row 1, cluster 1: H(0, .5) = 0 < H(.4, .25) = .1538 -> k* = 2, HD = .4
    # row 2, cluster 1: H(.4, .5) = .2222 > H(0, .25) = 0 -> k* = 1, HD = .4
    # cluster 0 has the single member 0: HD[i, 0] = A[i, 0]
    a = torch.tensor([[0.0, 0.2, 0.5], [0.2, 0.0, 0.4], [0.5, 0.4, 0.0]])
    b = torch.tensor([1.0, 0.5, 0.25])
    hd = harmonic_discrepancy(a, b, torch.tensor([0, 1, 1]), 2)
    assert torch.allclose(hd, torch.tensor([[0.0, 0.5], [0.2, 0.4], [0.5, 0.4]]))
    # an empty cluster reads 1 (above any A <= 1 - 1/e), not column 0 as the reference
    hd = harmonic_discrepancy(a, b, torch.tensor([0, 0, 0]), 2)
    assert hd[:, 1].tolist() == [1.0, 1.0, 1.0]


def _loop_reference(a, b, labels, k):
    """The reference kernel's double loop: running argmax with a strict '>' (first k wins)."""
    n = a.shape[0]
    out = np.ones((n, k))
    for i in range(n):
        best = np.full(k, -1.0)
        for j in range(n):
            s = a[i, j] + b[j]
            h = a[i, j] * b[j] / s if s > 0 else 0.0
            if h > best[labels[j]]:
                best[labels[j]], out[i, labels[j]] = h, a[i, j]
    return out


def test_harmonic_discrepancy_equals_the_loop():
    rng = np.random.default_rng(0)
    a = rng.uniform(0, 0.632, (40, 40)).astype(np.float32)
    a[:, ::7] = 0.632                                     # ties: several equal values per cluster
    b = rng.uniform(0, 1, 40).astype(np.float32)
    labels = rng.integers(0, 5, 40)
    hd = harmonic_discrepancy(torch.from_numpy(a), torch.from_numpy(b), torch.from_numpy(labels), 6)
    np.testing.assert_allclose(hd.numpy(), _loop_reference(a, b, labels, 6), atol=1e-7)


def test_sparse_discrepancy_equals_the_loop_on_the_dense_rows():
    """Step b on stored entries + fill (the Jaccard CSR) against the loop on the dense rows: ties
    in b (equal anchor confidences) and clusters whose members a row stores entirely, partly or not
    at all."""
    import scipy.sparse as sp

    from unreidusl.cluster.hdc import _JaccardRows

    rng = np.random.default_rng(1)
    n, k = 60, 7
    j = rng.uniform(0, 1, (n, n)).astype(np.float32)
    j[rng.random((n, n)) < 0.7] = 1.0                       # unstored
    j[:, :5] = rng.uniform(0, 0.5, (n, 5))                  # column block stored in every row
    j[2, 1] = np.nan                                        # A = 1 for a NaN distance
    keep = ~(j >= 1)                                        # NaN is stored
    csr = sp.csr_matrix((j[keep], np.nonzero(keep)[1], np.r_[0, np.cumsum(keep.sum(1))]), shape=(n, n))
    b = rng.choice([0.2, 0.5, 0.9], n).astype(np.float32)  # many equal confidences
    labels = rng.integers(0, k - 1, n)                      # cluster k - 1 stays empty
    labels[:5] = 0
    rows = _JaccardRows(csr, torch.device("cpu"))
    a_dense = (1.0 - torch.exp(-rows(np.arange(n)))).nan_to_num(nan=1.0).clamp(0, 1)
    hd = harmonic_discrepancy(rows, torch.from_numpy(b), torch.from_numpy(labels), k)
    np.testing.assert_array_equal(hd.numpy(), _loop_reference(a_dense.numpy(), b, labels, k))
    assert (hd[:, k - 1] == 1).all() and (hd < 1).any()


def test_relocation_moves_the_lowest_membership_samples_and_protects_small_clusters():
    # 7 samples, K = 3: cluster 0 has 5 members, cluster 1 two, cluster 2 none.
    # m = [.3, .1, .4, .5, .6, .05, .2]; sample 5 (m .05) sits in the 2-member cluster 1 (< protect 5),
    # so the lowest unprotected m is sample 1 (.1): it moves to cluster 2 and h = HD[1, 2] = .7
    labels = torch.tensor([0, 0, 0, 0, 0, 1, 1])
    m = torch.tensor([0.3, 0.1, 0.4, 0.5, 0.6, 0.05, 0.2])
    hd = torch.full((7, 3), 0.5)
    hd[1, 2] = 0.7
    h = torch.zeros(7)
    labels, h = relocate_empty(labels, h, m, hd, 3, protect=5)
    assert labels.tolist() == [0, 2, 0, 0, 0, 1, 1]
    assert h[1] == pytest.approx(0.7)


def test_peripheral_detection_mean_plus_sigma_and_threshold():
    # cluster 0: h = [.1, .1, .1, .5]: mean .2, std (ddof 1) = sqrt((3·.01 + .09)/3) = .2 -> .5 > .4
    # cluster 1: a single member with h = .9 is never pruned
    labels = torch.tensor([0, 0, 0, 0, 1])
    h = torch.tensor([0.1, 0.1, 0.1, 0.5, 0.9])
    assert peripheral_mask(labels, h, 2).tolist() == [False, False, False, True, False]
    # fixed threshold .05: every member of the 4-member cluster exceeds it, the singleton still stays
    assert peripheral_mask(labels, h, 2, threshold=0.05).tolist() == [True, True, True, True, False]


def test_anchor_distances_euler_and_the_released_complex_square():
    # x = [.25, .75], c = [0, 0], alpha = 1:
    # euler: (1 - cos(pi/4)) + (1 - cos(3pi/4)) = .29289 + 1.70711 = 2
    # complex: 1/2 [(e^{i pi/4} - 1)^2 + (e^{i 3pi/4} - 1)^2] = 1/2 [(-.41421 - .41421i) + (2.41421 - 2.41421i)]
    #          = 1 - 1.41421i, modulus sqrt(3)
    x, c = torch.tensor([[0.25, 0.75]]), torch.zeros(1, 2)
    assert anchor_distances(x, c, "euler", alpha=1.0).item() == pytest.approx(2.0, abs=1e-5)
    assert anchor_distances(x, c, "euler_complex", alpha=1.0).item() == pytest.approx(3 ** 0.5, abs=1e-5)
    assert anchor_distances(x, c, "cosine").item() == pytest.approx(1.0)
    assert anchor_distances(x, c, "euclidean").item() == pytest.approx((0.25 ** 2 + 0.75 ** 2) ** 0.5)
    with pytest.raises(ValueError, match="CLUSTER.HDC.DISTANCE"):
        anchor_distances(x, c, "manhattan")


def test_greedy_kmeanspp_on_a_precomputed_potential():
    # two far groups {0, 1} and {2, 3}: the second seed always comes from the other group
    # (the potential to the first seed's group is 0 inside it)
    d = torch.tensor([[0, 0, 1, 1], [0, 0, 1, 1], [1, 1, 0, 0], [1, 1, 0, 0]], dtype=torch.float32)
    for seed in range(5):
        seeds = greedy_kmeanspp(4, 2, lambda idx: d[idx], torch.Generator().manual_seed(seed))
        assert {s // 2 for s in seeds} == {0, 1}


def blobs(n=240, k=8, d=16, seed=0, noise=0):
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(k, d))
    y = np.arange(n) % k
    x = centres[y] + rng.normal(scale=0.3, size=(n, d))
    if noise:
        x[:noise] = rng.normal(size=(noise, d)) * 2                # points far from every blob
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    return x.astype(np.float32), y


@pytest.mark.parametrize("init", ["kmeans++2", "kmeans++"])
def test_hdc_recovers_blobs_and_is_reproducible(init):
    x, y = blobs()
    dist = jaccard_distance(torch.from_numpy(x), k1=20, k2=6, search_k=21)
    run = lambda: hdc(x, dist, 8, init=init, generator=torch.Generator().manual_seed(3))  # noqa: E731
    result = run()
    # a local method: a blob may end up split while two others merge, but most are recovered
    assert adjusted_rand_score(y, result.labels) > 0.8
    np.testing.assert_array_equal(result.labels, run().labels)
    assert result.centroids.shape == (8, 16) and 1 <= result.iterations <= 80


def test_hdc_flags_injected_noise_as_peripheral():
    x, _ = blobs(noise=20)
    dist = jaccard_distance(torch.from_numpy(x), k1=20, k2=6, search_k=21)
    result = hdc(x, dist, 8, generator=torch.Generator().manual_seed(0))
    assert result.peripheral[:20].mean() > 0.5 > result.peripheral[20:].mean()
    with pytest.raises(ValueError, match="NUM_CLUSTERS"):
        hdc(x, dist, 1)


def _cfg(**opts):
    cfg = get_cfg()
    cfg.merge_from_list(["CLUSTER.NAME", "HDC", "CLUSTER.NUM_CLUSTERS", 8, "CLUSTER.K1", 20,
                         "CLUSTER.K1_INCLUDES_SELF", False, "CLUSTER.MIN_SAMPLES", 4, "MODEL.DEVICE", "cpu"]
                        + [v for kv in opts.items() for v in kv])
    return cfg


def test_pipeline_warmup_switches_from_dbscan_to_hdc_and_passes_core_labels():
    x, y = blobs(noise=20)
    cfg = _cfg(**{"CLUSTER.WARMUP_EPOCHS": 2, "CLUSTER.EPS": 0.5, "CLUSTER.HDC.OUTLIER": False})
    labeler = PseudoLabeler(cfg, [None] * len(x))
    np.random.seed(0)
    labeler.set_epoch(1)
    warm = labeler(torch.from_numpy(x))
    assert type(labeler.clusterer).__name__ == "DBSCAN" and warm.centroid_labels is None
    labeler.set_epoch(2)
    result = labeler(torch.from_numpy(x))
    labels = result.labels
    assert type(labeler.clusterer).__name__ == "HDC" and labeler._max_dist(1.0) is None  # no eps pruning
    assert labels.max() + 1 == 8 and (labels >= 0).all()                 # OUTLIER off: every sample kept
    core = result.centroid_labels                                        # CENTROIDS: peripheral -> -1
    assert ((core == labels) | (core == -1)).all() and (core == -1).any()
    assert adjusted_rand_score(y[20:], labels[20:]) > 0.9


def test_hdc_clusterer_drops_peripheral_samples_with_outlier():
    x, _ = blobs(noise=20)
    cfg = _cfg()
    labeler = PseudoLabeler(cfg, [None] * len(x))
    np.random.seed(0)
    result = labeler(torch.from_numpy(x))
    labels = result.labels
    assert (labels[:20] == -1).mean() > 0.5 and result.centroid_labels is None
    counts = np.bincount(labels[labels >= 0])
    assert counts.min() >= 4 and len(counts) == labels.max() + 1


def test_pipeline_kmeans_after_dbscan_warmup():
    # 3C's K-means variant: a distance-based warm-up clusterer before a feature clusterer
    x, y = blobs()
    cfg = _cfg(**{"CLUSTER.NAME": "KMeans", "CLUSTER.WARMUP_EPOCHS": 1, "CLUSTER.EPS": 0.5,
                  "CLUSTER.KMEANS_BACKEND": "torch"})
    labeler = PseudoLabeler(cfg, [None] * len(x))
    assert labeler.distance is not None                                 # needed by the warm-up
    np.random.seed(0)
    labeler.set_epoch(0)
    labeler(torch.from_numpy(x))
    assert type(labeler.clusterer).__name__ == "DBSCAN"
    labeler.set_epoch(1)
    labels = labeler(torch.from_numpy(x)).labels
    assert type(labeler.clusterer).__name__ == "KMeans" and adjusted_rand_score(y, labels) > 0.8
