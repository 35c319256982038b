"""NCPLR / GL-NCPLR: the paper configs compute what the released code (haichuntai/NCPLR-ReID,
train.sh) computed; the _fixed config switches our fixes back on. Expected values are worked out by
hand in the comments."""
import math
import os
from types import SimpleNamespace

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from unreidusl.engine import setup_cfg
from unreidusl.engine.teacher_hooks import RelabelledOptimizerState
from unreidusl.modeling import build_model
from unreidusl.cluster import ClusterResult

from helpers import ROOT, flatten_cfg

PAPER = ["configs/NCPLR/market1501.yml", "configs/NCPLR/market1501_global.yml", "configs/NCPLR/msmt17.yml"]
GLOBAL = "configs/NCPLR/market1501_global.yml"            # plain NCPLR: one branch
FIXED = "configs/NCPLR/market1501_fixed.yml"
SYNTHETIC = "configs/Synthetic/gl_ncplr.yml"
SMALL = ("MODEL.BACKBONE.PRETRAIN", "False", "MODEL.BACKBONE.DEPTH", "18")
# the fixed GL-NCPLR config reduced to one branch, to compare with the plain NCPLR paper config
ONE_BRANCH = ("MODEL.HEADS.NUM_PARTS", "0", "MODEL.NCPLR.EXCHANGE", "False", "CLUSTER.DISTANCE", "JaccardDistance")


def _cfg(path, *opts):
    return setup_cfg(os.path.join(ROOT, path), ["MODEL.DEVICE", "cpu", *opts])


def _model(path, *opts):
    torch.manual_seed(0)
    return build_model(_cfg(path, *SMALL, *opts))


def test_neighbour_weights_from_distance_within_the_batch():
    # Three pseudo-labelled samples, labels (0, 0, 1); clustering distances D01 = 0.1, D02 = 0.2,
    # D12 = 1; radius 0.2 → N(0) = {0, 1, 2}, N(1) = {0, 1}. The batch holds samples 0 and 1 with
    # logits (0, 0) and (ln 3, 0): p0 = (1/2, 1/2), p1 = (3/4, 1/4). α = 0.1, τ = 1.
    # released code (weights softmax(+D), neighbours in the batch only): N(0) ∩ batch = {0, 1},
    #   w = (e^0, e^0.1)/(1 + e^0.1) → e_0 = (p0 + e^0.1·p1)/(1 + e^0.1);
    #   N(1) = {0, 1}: e_1 = (e^0.1·p0 + p1)/(1 + e^0.1).
    # ours (softmax(−D), all pseudo-labelled samples; sample 2 is out of the batch and contributes its
    #   bank entry, its one-hot pseudo-label (0, 1)):
    #   e_0 = (p0 + e^−0.1·p1 + e^−0.2·(0, 1))/(1 + e^−0.1 + e^−0.2);
    #   e_1 = (e^−0.1·p0 + p1)/(1 + e^−0.1).
    # target ỹ_i = 0.1·onehot(0) + 0.9·e_i.
    dist = np.array([[0.0, 0.1, 0.2], [0.1, 0.0, 1.0], [0.2, 1.0, 0.0]], dtype=np.float32)
    labels = np.array([0, 0, 1])
    z = torch.tensor([[0.0, 0.0], [math.log(3.0), 0.0]])
    p0, p1, y2 = np.array([0.5, 0.5]), np.array([0.75, 0.25]), np.array([0.0, 1.0])
    a = math.exp(0.1)
    released = [(p0 + a * p1) / (1 + a), (a * p0 + p1) / (1 + a)]
    b, c = math.exp(-0.1), math.exp(-0.2)
    ours = [(p0 + b * p1 + c * y2) / (1 + b + c), (b * p0 + p1) / (1 + b)]
    onehot = np.array([1.0, 0.0])
    for path, opts, ensembles in ((GLOBAL, (), released), (FIXED, ONE_BRANCH, ours)):
        model = _model(path, *opts)
        torch.manual_seed(0)
        model.reset_pseudo_labels(ClusterResult(labels, features=F.normalize(torch.randn(3, model.encoder.feat_dim), dim=1), distance=dist))
        (soft,) = model.refined_labels([z], torch.tensor([0, 0]), torch.tensor([0, 1]))
        for i, e in enumerate(ensembles):
            assert soft[i].tolist() == pytest.approx((0.1 * onehot + 0.9 * e).tolist(), abs=1e-6), (path, i)
    # the two differ visibly: sample 0's target mass on class 0, 0.1 + 0.9·e_0[0]:
    #   released 0.1 + 0.9·(0.5 + 0.75·e^0.1)/(1 + e^0.1) = 0.6681;
    #   ours 0.1 + 0.9·(0.5 + 0.75·e^−0.1)/(1 + e^−0.1 + e^−0.2) = 0.4895 (sample 2, class 1, now counts)
    assert 0.1 + 0.9 * released[0][0] == pytest.approx(0.6681, abs=1e-4)
    assert 0.1 + 0.9 * ours[0][0] == pytest.approx(0.4895, abs=1e-4)


def _adam_shift(path, *opts):
    """Row 0's change at the first step after a re-clustering, with Adam (lr 0.01, β = (0.9, 0.999), no
    weight decay) on the global classifier, the gradient +1 before and −1 after the re-clustering, and
    the trainer's hook that drops the optimiser state of ``relabelled_parameters``."""
    model = _model(path, *opts)
    weight = model.classifiers[0].weight
    opt = torch.optim.Adam([weight], lr=0.01)
    pseudo_labels = SimpleNamespace(rounds=0)
    hook = RelabelledOptimizerState(pseudo_labels)
    hook.trainer = SimpleNamespace(model=model, optimizer=opt)
    dist = np.full((4, 4), 0.1, dtype=np.float32)
    np.fill_diagonal(dist, 0.0)
    torch.manual_seed(0)
    features = F.normalize(torch.randn(4, model.encoder.feat_dim), dim=1)
    for labels, grad in ((np.array([0, 0, 1, 1]), 1.0), (np.array([0, 1, 2, 2]), -1.0)):
        model.reset_pseudo_labels(ClusterResult(labels, features=features, distance=dist))
        pseudo_labels.rounds += 1
        hook.before_epoch()                                   # new pseudo-labels: a new round
        before = weight.detach().clone()
        weight.grad = torch.full_like(weight, grad)
        opt.step()
    return model, (weight.detach() - before)[0]


def test_classifier_adam_moments_survive_reclustering():
    # released code (moments and step count kept): step 1, g = +1: m = 0.1, v = 0.001.
    #   step 2, g = −1: m = 0.9·0.1 − 0.1 = −0.01, v = 0.999·0.001 + 0.001 = 0.001999;
    #   m̂ = m/(1 − 0.9²) = −0.01/0.19 = −1/19, v̂ = v/(1 − 0.999²) = 0.001999/0.001999 = 1;
    #   Δw = −lr·m̂/(√v̂ + ε) = +0.01/19.
    # ours (state dropped at the re-clustering): a first step with g = −1: m̂ = −1, v̂ = 1, Δw = +0.01.
    lr, eps = 0.01, 1e-8
    model, shift = _adam_shift(GLOBAL)
    assert shift.tolist() == pytest.approx([lr / 19 / (1 + eps)] * len(shift), rel=1e-3)
    assert model.classifiers[0].weight.shape[0] == 3000           # the released 3000-row classifier
    model, shift = _adam_shift(FIXED, *ONE_BRANCH)
    assert shift.tolist() == pytest.approx([lr / (1 + eps)] * len(shift), rel=1e-3)
    assert model.classifiers[0].weight.shape[0] == 3              # one row per cluster


def test_fixed_rows_classifier_overwrites_the_first_rows_and_cuts_the_logits():
    # 3000 rows initialised N(0, 0.001); a clustering with C = 2 overwrites rows 0, 1 with the unit
    # centroids, leaves the rest, and the logits cover the C clusters only
    model = _model(GLOBAL)
    weight = model.classifiers[0].weight
    assert weight.shape == (3000, model.encoder.feat_dim)
    assert 0.0008 < weight.std().item() < 0.0012
    init = weight.detach().clone()
    torch.manual_seed(0)
    features = F.normalize(torch.randn(4, model.encoder.feat_dim), dim=1)
    dist = np.full((4, 4), 0.1, dtype=np.float32)
    np.fill_diagonal(dist, 0.0)
    model.reset_pseudo_labels(ClusterResult(np.array([0, 0, 1, -1]), features=features, distance=dist))
    assert torch.allclose(weight[0], F.normalize(features[:2].mean(0), dim=0), atol=1e-6)
    assert torch.allclose(weight[1], features[2], atol=1e-6)
    assert torch.equal(weight[2:], init[2:])
    x = torch.randn(5, model.encoder.feat_dim)
    assert torch.allclose(model._class_logits(0, x), x @ weight[:2].t())
    with pytest.raises(ValueError, match="CLASSIFIER_ROWS"):
        model.reset_pseudo_labels(ClusterResult(np.arange(3001), features=torch.randn(3001, model.encoder.feat_dim), distance=np.zeros((3001, 3001), dtype=np.float32)))


def test_kept_moments_need_persistent_rows():
    with pytest.raises(ValueError, match="CLASSIFIER_ROWS"):
        build_model(_cfg(GLOBAL, *SMALL, "MODEL.NCPLR.CLASSIFIER_ROWS", "0"))


@pytest.mark.parametrize("path", PAPER)
def test_paper_configs_select_the_released_code(path):
    cfg = _cfg(path, *SMALL)
    n = cfg.MODEL.NCPLR
    assert n.NEIGHBOR_WEIGHT == "distance" and n.NEIGHBOR_SCOPE == "batch"
    assert n.CLASSIFIER_ROWS == 3000 and n.RESET_CLASSIFIER_MOMENTS is False
    model = _model(path)
    assert model.neighbor_weight == "distance" and not model.use_bank
    assert model.relabelled_parameters() == []
    assert all(clf.weight.shape[0] == 3000 for clf in model.classifiers)


def test_fixed_config_selects_ours_and_changes_nothing_else():
    paper, fixed = flatten_cfg(_cfg(PAPER[0])), flatten_cfg(_cfg(FIXED))
    keys = {"MODEL.NCPLR.NEIGHBOR_WEIGHT": "similarity", "MODEL.NCPLR.NEIGHBOR_SCOPE": "dataset",
            "MODEL.NCPLR.CLASSIFIER_ROWS": 0, "MODEL.NCPLR.RESET_CLASSIFIER_MOMENTS": True}
    assert {k: fixed[k] for k in keys} == keys
    assert {k for k in paper if paper[k] != fixed[k]} == set(keys) | {"OUTPUT_DIR"}
    model = _model(FIXED)
    assert len(model.relabelled_parameters()) == model.num_branches == 3


def test_synthetic_config_keeps_what_it_computed():
    # the README's method-comparison numbers were trained with these
    n = _cfg(SYNTHETIC).MODEL.NCPLR
    assert (n.NEIGHBOR_WEIGHT, n.NEIGHBOR_SCOPE, n.CLASSIFIER_ROWS, n.RESET_CLASSIFIER_MOMENTS) == \
        ("similarity", "dataset", 0, True)
