"""Each loss against a hand-computed case."""
import math

import pytest
import torch

from unreidusl.config import get_cfg
from unreidusl.modeling.losses import (LabelSmoothingCrossEntropy, RestrictedLabelSmoothingCrossEntropy,
                                       SoftCrossEntropyLoss, SoftMarginTripletLoss, SoftTripletLoss,
                                       WeightAdaptiveTripletLoss, hard_example_mining)


def cfg_with(**kw):
    cfg = get_cfg()
    cfg.MODEL.LOSSES.CE.EPSILON = kw.get("eps", 0.1)
    cfg.MODEL.LOSSES.TRI_MARGIN = kw.get("margin", 0.5)
    cfg.MODEL.LOSSES.TRI_LAMBDA = kw.get("lam", -0.01)
    return cfg


def test_label_smoothing_target():
    logits = torch.tensor([[2.0, 0.0, 0.0, 0.0]])
    loss = LabelSmoothingCrossEntropy(cfg_with(eps=0.2))({"logits": logits}, torch.tensor([0]))
    logp = torch.log_softmax(logits, 1)[0]
    expected = -(0.85 * logp[0] + 0.05 * (logp[1] + logp[2] + logp[3]))  # 1-ε+ε/C, ε/C
    assert loss.item() == pytest.approx(expected.item(), rel=1e-6)


def test_rlsce_puts_mass_only_on_nearest_clusters():
    logits = torch.tensor([[1.0, 2.0, 3.0, 4.0, 5.0]])
    neighbors = torch.tensor([[1, 2], [0, 2], [3, 4], [2, 0], [3, 2]])  # K = 2, own id excluded
    loss = RestrictedLabelSmoothingCrossEntropy(cfg_with(eps=0.1))(
        {"logits": logits, "cluster_neighbors": neighbors}, torch.tensor([2]))
    logp = torch.log_softmax(logits, 1)[0]
    expected = -(0.9 * logp[2] + 0.05 * logp[3] + 0.05 * logp[4])
    assert loss.item() == pytest.approx(expected.item(), rel=1e-6)


def test_rlsce_with_fewer_neighbours_than_k_keeps_a_distribution():
    logits = torch.tensor([[0.5, -1.0]])
    neighbors = torch.tensor([[1, -1], [0, -1]])  # C = 2 ≤ K = 2: one real neighbour
    loss = RestrictedLabelSmoothingCrossEntropy(cfg_with(eps=0.1))(
        {"logits": logits, "cluster_neighbors": neighbors}, torch.tensor([0]))
    logp = torch.log_softmax(logits, 1)[0]
    assert loss.item() == pytest.approx(-(0.9 * logp[0] + 0.1 * logp[1]).item(), rel=1e-6)


def test_soft_cross_entropy_against_teacher():
    s, t = torch.tensor([[1.0, 0.0]]), torch.tensor([[0.0, 1.0]])
    loss = SoftCrossEntropyLoss()({"logits": s, "teacher_logits": t}, torch.tensor([0]))
    pt = torch.softmax(t, 1)[0]
    logp = torch.log_softmax(s, 1)[0]
    assert loss.item() == pytest.approx(-(pt * logp).sum().item(), rel=1e-6)


def _toy_batch():
    # ids 0,0,1,1 on a line: x = 0, 1, 3, 7
    feats = torch.tensor([[0.0], [1.0], [3.0], [7.0]])
    return feats, torch.tensor([0, 0, 1, 1])


def test_hard_mining_indices():
    feats, y = _toy_batch()
    dist = torch.cdist(feats, feats)
    pos, neg = hard_example_mining(dist, y)
    assert pos.tolist() == [1, 0, 3, 2] and neg.tolist() == [2, 2, 1, 1]


def test_soft_margin_triplet():
    feats, y = _toy_batch()
    loss = SoftMarginTripletLoss()({"features": feats}, y)
    # d_ap - d_an: anchor0 1-3, anchor1 1-2, anchor2 4-2, anchor3 4-6
    expected = sum(math.log1p(math.exp(v)) for v in (-2, -1, 2, -2)) / 4
    assert loss.item() == pytest.approx(expected, rel=1e-5)


def test_watl_weights_and_cut_at_zero():
    feats, y = _toy_batch()
    loss = WeightAdaptiveTripletLoss(cfg_with(margin=0.5, lam=-0.5))({"features": feats}, y)
    # t = Δ + 0.5: -1.5 (cut), -0.5 (cut), 2.5 -> e^{-1.25}·2.5, -1.5 (cut)
    assert loss.item() == pytest.approx(math.exp(-1.25) * 2.5 / 4, rel=1e-5)


def test_watl_gradient_is_not_detached():
    feats, y = _toy_batch()
    feats.requires_grad_(True)
    loss = WeightAdaptiveTripletLoss(cfg_with(margin=0.5, lam=-0.5))({"features": feats}, y)
    loss.backward()
    # only anchor 2 is active: t = d(2,3) - d(2,1) + m; dL/dt = e^{λt}(1+λt)/B
    g = math.exp(-1.25) * (1 - 1.25) / 4
    # x2 appears in d(2,3) = x3 - x2 (d/dx2 = -1) and d(2,1) = x2 - x1 (d/dx2 = +1 → −): total −2·g
    assert feats.grad[2, 0].item() == pytest.approx(-2 * g, rel=1e-5)


def test_soft_triplet_uses_student_pairs_and_teacher_distances():
    feats, y = _toy_batch()
    teacher = torch.tensor([[0.0], [2.0], [3.0], [4.0]])
    loss = SoftTripletLoss()({"features": feats, "teacher_triplet_features": teacher}, y)
    total = 0.0
    # student pairs (pos, neg): 0:(1,2) 1:(0,2) 2:(3,1) 3:(2,1)
    for a, p, n in ((0, 1, 2), (1, 0, 2), (2, 3, 1), (3, 2, 1)):
        s = torch.tensor([abs(feats[a] - feats[p]).item(), abs(feats[a] - feats[n]).item()])
        t = torch.tensor([abs(teacher[a] - teacher[p]).item(), abs(teacher[a] - teacher[n]).item()])
        total += -(t.softmax(0) * s.log_softmax(0)).sum().item()
    assert loss.item() == pytest.approx(total / 4, rel=1e-5)


def test_mining_without_negative_is_a_clear_error():
    with pytest.raises(ValueError, match="negative"):
        hard_example_mining(torch.zeros(2, 2), torch.tensor([0, 0]))
