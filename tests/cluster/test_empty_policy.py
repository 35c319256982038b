"""A clustering with every sample an outlier, or a single cluster: CLUSTER.EMPTY_POLICY error / keep /
relax (cluster/empty_policy.py), on hand-made points with known DBSCAN results."""
import numpy as np
import pytest
import torch

from unreidusl.cluster.empty_policy import EmptyClusterPolicy, PseudoLabelError
from unreidusl.cluster.pipeline import PseudoLabeler
from unreidusl.engine import setup_cfg

from helpers import main, tiny_opts

# Two groups of three points on vertical lines 5 apart; within a group, neighbours are 0.1 apart.
POINTS = torch.tensor([[0, 0], [0, 0.1], [0, 0.2], [5, 0], [5, 0.1], [5, 0.2]], dtype=torch.float32)
TWO = [0, 0, 0, 1, 1, 1]


def _setup(eps, policy="error", factor=1.5, retries=3, name="DBSCAN"):
    cfg = setup_cfg("", ["CLUSTER.DISTANCE", "EuclideanDistance", "CLUSTER.NAME", name,
                         "CLUSTER.EPS", str(eps), "CLUSTER.MIN_SAMPLES", "2", "CLUSTER.NUM_CLUSTERS", "1",
                         "CLUSTER.EMPTY_POLICY", policy, "CLUSTER.EMPTY_EPS_FACTOR", str(factor),
                         "CLUSTER.EMPTY_MAX_RETRIES", str(retries)])
    return EmptyClusterPolicy(cfg), PseudoLabeler(cfg, [])


def test_usable_clustering_passes_through():
    policy, labeler = _setup(0.15)
    result = policy(labeler, POINTS, None)
    assert result.labels.tolist() == TWO and result.eps == pytest.approx(0.15)


def test_error_names_the_problem_and_the_keys():
    policy, labeler = _setup(0.05)
    with pytest.raises(PseudoLabelError) as e:
        policy(labeler, POINTS, None)
    msg = str(e.value)
    assert "DBSCAN labelled all 6 training samples as outliers (eps=0.05, CLUSTER.MIN_SAMPLES=2)" in msg
    assert "Increase CLUSTER.EPS" in msg and "CLUSTER.EMPTY_POLICY" in msg
    policy, labeler = _setup(10.0)
    with pytest.raises(PseudoLabelError, match="put all 6 non-outlier training samples into one cluster"):
        policy(labeler, POINTS, None)


def test_keep_returns_the_previous_labels_except_at_the_first_clustering():
    policy, labeler = _setup(0.05, "keep")
    previous = np.array([1, 1, 0, 0, -1, 0])
    assert policy(labeler, POINTS, previous).labels.tolist() == previous.tolist()
    with pytest.raises(PseudoLabelError, match="no previous pseudo-labels at the first clustering"):
        policy(labeler, POINTS, None)


def test_relax_widens_or_narrows_eps_until_usable():
    # all outliers at 0.05: 0.075 still, 0.1125 >= 0.1 links each group
    policy, labeler = _setup(0.05, "relax")
    result = policy(labeler, POINTS, None)
    assert result.labels.tolist() == TWO and result.eps == pytest.approx(0.05 * 1.5 ** 2)
    # one cluster at 10: 6.67 still bridges the 5-apart groups, 4.44 does not
    policy, labeler = _setup(10.0, "relax")
    result = policy(labeler, POINTS, None)
    assert result.labels.tolist() == TWO and result.eps == pytest.approx(10 / 1.5 ** 2)
    assert labeler(POINTS).eps == pytest.approx(10.0)                   # the relaxed eps held once only


def test_relax_gives_up_after_the_retries_and_needs_an_eps():
    policy, labeler = _setup(0.01, "relax", factor=2.0, retries=2)
    with pytest.raises(PseudoLabelError, match="relax tried eps 0.01, 0.02, 0.04 without a usable"):
        policy(labeler, POINTS, None)
    policy, labeler = _setup(0.5, "relax", name="KMeans")
    with pytest.raises(PseudoLabelError, match="relax needs a clusterer with an eps, not KMeans"):
        policy(labeler, POINTS, None)
    with pytest.raises(ValueError, match="CLUSTER.EMPTY_POLICY must be one of"):
        _setup(0.5, "retry")


def test_training_reports_an_all_outlier_clustering_in_one_line(tiny_root, tmp_path, capsys):
    opts = tiny_opts(tiny_root, tmp_path, **{"CLUSTER.EPS": 1e-6, "CLUSTER.MIN_SAMPLES": 50,
                                             "CLUSTER.SIZE_HISTOGRAM": False})
    assert main(opts) == 1
    out = capsys.readouterr().out
    assert "PseudoLabelError" in out and "labelled all 117 training samples as outliers" in out
    assert "Traceback" not in out
