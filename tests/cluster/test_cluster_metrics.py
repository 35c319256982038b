from itertools import combinations

import numpy as np
import pytest
from sklearn.metrics import normalized_mutual_info_score

from unreidusl.cluster import cluster_quality, cluster_summary


def brute_force(pred, truth):
    pred = pred.copy()
    nxt = pred.max() + 1
    for i in np.flatnonzero(pred < 0):
        pred[i], nxt = nxt, nxt + 1
    same_p = {(i, j) for i, j in combinations(range(len(pred)), 2) if pred[i] == pred[j]}
    same_t = {(i, j) for i, j in combinations(range(len(pred)), 2) if truth[i] == truth[j]}
    tp = len(same_p & same_t)
    p = tp / len(same_p) if same_p else 0.0
    r = tp / len(same_t) if same_t else 0.0
    return p, r, (2 * p * r / (p + r) if p + r else 0.0), pred


@pytest.mark.parametrize("seed", range(5))
def test_pairwise_metrics_match_brute_force(seed):
    rng = np.random.default_rng(seed)
    truth = rng.integers(0, 6, 60)
    pred = rng.integers(-1, 5, 60)
    got = cluster_quality(pred, truth)
    p, r, f, singles = brute_force(pred, truth)
    assert got["pairwise_precision"] == pytest.approx(p)
    assert got["pairwise_recall"] == pytest.approx(r)
    assert got["pairwise_f"] == pytest.approx(f)
    assert got["nmi"] == pytest.approx(normalized_mutual_info_score(truth, singles))


def test_perfect_clustering_and_summary():
    truth = np.array([0, 0, 1, 1, 2, 2])
    got = cluster_quality(np.array([5, 5, 3, 3, 9, 9]), truth)
    assert got["pairwise_f"] == 1.0 and got["nmi"] == pytest.approx(1.0) and got["cluster_count_ratio"] == 1.0
    s = cluster_summary(np.array([0, 0, -1, 1, -1]))
    assert s == {"num_clusters": 2, "outlier_ratio": 0.4}
