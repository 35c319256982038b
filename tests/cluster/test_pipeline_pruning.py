"""Storing only D <= eps (known eps) changes no pseudo-label."""
import numpy as np
import pytest
import torch

from unreidusl.cluster.pipeline import PseudoLabeler
from unreidusl.data import Sample
from unreidusl.engine import setup_cfg


def clustered(n=240, centres=20, dim=32, seed=0):
    rng = np.random.default_rng(seed)
    c = rng.normal(size=(centres, dim))
    x = c[rng.integers(centres, size=n)] + 0.6 * rng.normal(size=(n, dim))
    return torch.nn.functional.normalize(torch.tensor(x, dtype=torch.float32), dim=1)


@pytest.mark.parametrize("eps", [0.45, 0.6])
def test_pruned_distance_gives_identical_labels(eps, tmp_path):
    cfg = setup_cfg("", ["CLUSTER.EPS", str(eps), "CLUSTER.K1", "12", "CLUSTER.K2", "4",
                         "OUTPUT_DIR", str(tmp_path)])
    feats = clustered()
    samples = [Sample((f"{i}.jpg",), 0, i % 3, (float(i),)) for i in range(len(feats))]
    labeler = PseudoLabeler(cfg, samples)
    pruned_labels = labeler(feats).labels
    assert labeler._max_dist(1.0) == pytest.approx(eps)
    pruned = labeler.distance(feats, max_dist=labeler._max_dist(1.0))
    full = labeler.distance(feats)
    full_labels = labeler(feats, dist=full).labels
    assert pruned.nnz < full.nnz and pruned.data.max() <= eps
    assert np.array_equal(pruned_labels, full_labels) and (full_labels >= 0).any()
