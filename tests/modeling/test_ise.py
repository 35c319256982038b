"""ISE: PLI support samples, λ schedule, LP loss, memory use."""
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from unreidusl.engine import setup_cfg
from unreidusl.engine.teacher_hooks import TrainingProgress
from unreidusl.modeling import build_model
from unreidusl.modeling.losses import label_preserving_loss
from unreidusl.modeling.memory import ClusterMemory
from unreidusl.modeling.meta_arch import progressive_supports
from unreidusl.cluster import ClusterResult

SMALL = ["MODEL.BACKBONE.DEPTH", "18", "MODEL.BACKBONE.LAST_STRIDE", "2"]


def test_supports_move_towards_nearest_other_centroid_by_centroid_difference():
    # c0 = (1,0), c1 = (0,1), c2 = (−1,0); f = (1,0) of cluster 0. Cosines to the others: c1 0, c2 −1,
    # so the nearest other is c1, then c2. λ = 0.25:
    #   k=1: f + 0.25·(c1 − c0) = (0.75, 0.25) → /|.| = (0.9487, 0.3162)
    #   k=2: f + 0.25·(c2 − c0) = (0.5, 0)     → (1, 0)
    centroids = torch.tensor([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0]])
    f = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    y = torch.tensor([0, 1])
    supports, labels = progressive_supports(f, y, centroids, lam=0.25, topk=2)
    assert labels.tolist() == [0, 1, 0, 1]                 # k-major, labels preserved
    assert torch.allclose(supports[0], torch.tensor([0.9487, 0.3162]), atol=1e-4)
    assert torch.allclose(supports[2], torch.tensor([1.0, 0.0]), atol=1e-6)
    # f = (0,1) of cluster 1: cosines c0 0, c2 0 (tie → lower index c0 first); k=1: (0.25, 0.75)
    assert torch.allclose(supports[1], F.normalize(torch.tensor([0.25, 0.75]), dim=0), atol=1e-6)


def test_supports_at_lambda_zero_equal_real_samples_and_carry_gradient():
    centroids = F.normalize(torch.randn(4, 8), dim=1)
    f = F.normalize(torch.randn(6, 8), dim=1).requires_grad_(True)
    y = torch.tensor([0, 0, 1, 2, 3, 3])
    supports, _ = progressive_supports(f, y, centroids, lam=0.0, topk=1)
    assert torch.allclose(supports, f)
    progressive_supports(f, y, centroids, lam=0.3, topk=1)[0].sum().backward()
    assert f.grad is not None and f.grad.abs().sum() > 0


def test_one_cluster_gives_no_supports():
    supports, labels = progressive_supports(torch.ones(3, 2), torch.zeros(3, dtype=torch.long),
                                            torch.ones(1, 2), lam=0.2, topk=1)
    assert supports.shape == (0, 2) and labels.numel() == 0


def test_label_preserving_loss_hand_computed():
    # τ = 1. Anchors a0 = (1,0) [id 0], a1 = (0,1) [id 1]. Supports (id): s0 (1,0) (0),
    # s1 (0.6,0.8) (0), s2 (0,1) (1), s3 (0.8,0.6) (1), s4 (−1,0) (2).
    # a0: cosines 1, .6 | 0, .8 | −1 → p = e^.6 (hardest positive), negatives: id 1 max e^.8, id 2 e^−1
    #     L0 = −log(1.8221 / (1.8221 + 2.2255 + 0.3679)) = −log(0.41266) = 0.88513
    # a1: cosines 0, .8 | 1, .6 | 0 → p = e^.6, negatives: id 0 max e^.8, id 2 e^0
    #     L1 = −log(1.8221 / (1.8221 + 2.2255 + 1)) = −log(0.36098) = 1.01892
    # L = (0.88513 + 1.01892) / 2 = 0.95203 (the 1e-6 terms lower it by about 2.4e-6)
    anchors = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    supports = torch.tensor([[1.0, 0.0], [0.6, 0.8], [0.0, 1.0], [0.8, 0.6], [-1.0, 0.0]])
    loss = label_preserving_loss(anchors, torch.tensor([0, 1]), supports, torch.tensor([0, 0, 1, 1, 2]), 1.0)
    assert loss.item() == pytest.approx(0.952027, abs=5e-6)


def test_label_preserving_loss_is_independent_of_support_order():
    torch.manual_seed(0)
    anchors = F.normalize(torch.randn(6, 4), dim=1)
    ya = torch.tensor([0, 0, 1, 1, 2, 2])
    supports = F.normalize(torch.randn(12, 4), dim=1)
    ys = ya.repeat(2)
    perm = torch.randperm(12)
    a = label_preserving_loss(anchors, ya, supports, ys, 0.6)
    b = label_preserving_loss(anchors, ya, supports[perm], ys[perm], 0.6)
    assert a.item() == pytest.approx(b.item(), rel=1e-6)


def test_lambda_schedule():
    # λ(t) = 0.25·ln(1 + (e − 1)·t/T): 0 at the start, 0.25·ln(1.8591) = 0.15503 halfway, 0.25 at the end
    model = build_model(setup_cfg("", SMALL + ["MODEL.META_ARCHITECTURE", "ISE"]))
    model.set_progress(0, 100)
    assert model.support_lambda == 0.0
    model.set_progress(50, 100)
    assert model.support_lambda == pytest.approx(0.155029, abs=1e-6)
    model.set_progress(100, 100)
    assert model.support_lambda == pytest.approx(0.25)


def test_training_progress_hook_passes_global_iteration():
    class Trainer:
        iter, max_epochs, iters_per_epoch = 45, 3, 30
        model = build_model(setup_cfg("", SMALL + ["MODEL.META_ARCHITECTURE", "ISE"]))

    hook = TrainingProgress()
    hook.trainer = Trainer()
    hook.before_step()
    assert Trainer.model.progress == pytest.approx(0.5)


@pytest.mark.parametrize("with_supports", [True, False])
def test_memory_sees_real_and_support_samples(with_supports):
    cfg = setup_cfg("", SMALL + ["MODEL.META_ARCHITECTURE", "ISE", "MODEL.ISE.UPDATE_WITH_SUPPORTS",
                                 str(with_supports), "MODEL.MEMORY.UPDATE", "momentum"])
    torch.manual_seed(0)
    model = build_model(cfg).train()
    model.reset_pseudo_labels(ClusterResult(np.repeat(np.arange(3), 4), features=torch.randn(12, 512)))
    model.set_progress(1, 2)
    pooled = torch.randn(6, 512, requires_grad=True)
    y = torch.tensor([0, 0, 1, 1, 2, 2])
    before = model.memory.features.clone()
    features = model.encoder.embed(pooled)
    supports, ys = progressive_supports(features, y, before, model.support_lambda, 1)
    losses = model.batch_losses({"pooled": pooled}, y)
    # the InfoNCE term averages over the 6 real and 6 support queries
    logits = torch.cat([features, supports]).mm(before.t()) / 0.05
    assert losses["ClusterContrastLoss"].item() == pytest.approx(
        F.cross_entropy(logits, torch.cat([y, ys])).item(), rel=1e-5)
    reference = ClusterMemory(512, old_weight=cfg.MODEL.MEMORY.OLD_WEIGHT)
    reference.reset(before)
    if with_supports:
        reference.update(torch.cat([features, supports]).detach(), torch.cat([y, ys]))
    else:
        reference.update(features.detach(), y)
    assert torch.allclose(model.memory.features, reference.features, atol=1e-6)
    sum(losses.values()).backward()
    assert pooled.grad.abs().sum() > 0


@pytest.mark.parametrize("path", ["configs/ISE/market1501.yml", "configs/ISE/msmt17.yml",
                                  "configs/Synthetic/ise.yml"])
def test_configs_load_and_build(path):
    cfg = setup_cfg(path, ["MODEL.BACKBONE.PRETRAIN", "False", "MODEL.BACKBONE.DEPTH", "18"])
    model = build_model(cfg)
    assert type(model).__name__ == "ISE"
    assert set(model.losses) == {"ClusterContrastLoss", "LabelPreservingLoss"}
