"""CDSM: reliability, DBSCAN core samples, diversity mining and memory,
center/margin loss, multi-centre initialisation, the meta-architecture and its configs."""
import math

import numpy as np
import pytest
import scipy.sparse as sp
import torch
from sklearn.cluster import DBSCAN as SkDBSCAN

from unreidusl.cluster.dbscan import dbscan_sparse
from unreidusl.cluster.pipeline import PseudoLabeler
from unreidusl.cluster.reliability import cluster_relative_gate, label_iou
from unreidusl.engine import setup_cfg
from unreidusl.engine.train_loop import SimpleTrainer
from unreidusl.modeling import build_model
from unreidusl.modeling.losses import center_margin_loss
from unreidusl.modeling.memory import DiversityMemory, diversity_selection
from unreidusl.modeling.meta_arch.cdsm import chunk_centroids
from unreidusl.utils.events import EventStorage
from unreidusl.cluster import ClusterResult

SMALL = ["MODEL.META_ARCHITECTURE", "CDSM", "MODEL.MEMORY.NAME", "DiversityMemory", "MODEL.LOSSES.NAME",
         "['CenterMarginLoss']", "MODEL.BACKBONE.DEPTH", "18", "MODEL.BACKBONE.LAST_STRIDE", "2"]


def test_label_iou_counts():
    # S(0) = {0,1,2}, S'(0) = {0,1}: 2/3.  S(2) = {0,1,2}, S'(2) = {2,3,4}: 1/5.
    # S(3) = {3,4}, S'(3) = {2,3,4}: 2/3.  The outlier is a singleton in both: 1.
    iou = label_iou(np.array([0, 0, 0, 1, 1, -1]), np.array([0, 0, 1, 1, 1, -1]))
    assert np.allclose(iou, [2 / 3, 2 / 3, 1 / 5, 2 / 3, 2 / 3, 1.0])
    # an outlier at one eps next to a cluster at the other: S = {5}, S' = {4, 5}: 1/2
    assert label_iou(np.array([0, 0, 0, 0, 1, -1]), np.array([0, 0, 0, 0, 1, 1]))[5] == 0.5


def test_cluster_relative_gate():
    # ratio 0.2. Cluster 0: max R 1.0 → threshold 0.2: [pass, pass, fail]; cluster 1: max 0.4 → 0.08:
    # [pass, fail]. A second score passes sample 2 (0.5 ≥ 0.2·0.5) but not sample 4 (0.05 < 0.2·0.5);
    # the outlier never passes.
    labels = np.array([0, 0, 0, 1, 1, -1])
    r1 = np.array([1.0, 0.5, 0.1, 0.4, 0.05, 1.0])
    assert cluster_relative_gate(labels, [r1], 0.2).tolist() == [True, True, False, True, False, False]
    r2 = np.array([0.1, 0.1, 0.5, 0.5, 0.05, 1.0])
    assert cluster_relative_gate(labels, [r1, r2], 0.2).tolist() == [True, True, True, True, False, False]


def test_dbscan_core_samples_match_sklearn():
    rng = np.random.default_rng(0)
    d = rng.random((30, 30))
    d = np.minimum(d, d.T) * 0.8
    np.fill_diagonal(d, 0)
    d[d > 0.3] = 0                                      # sparse: unstored = far
    dist = sp.csr_matrix(d)
    dist.setdiag(0)
    labels, core = dbscan_sparse(dist, 0.2, 3, return_core=True)
    sk = SkDBSCAN(eps=0.2, min_samples=3, metric="precomputed").fit(dist)
    assert np.array_equal(labels, sk.labels_)
    assert np.array_equal(np.flatnonzero(core), sk.core_sample_indices_)


def test_pseudo_labeler_gives_core_and_eps_gap_labellings():
    # points on a line at 0, .1, .2 and 1.0, 1.15, 1.3, 1.45 (distance |x_i − x_j|), min_samples 2:
    # eps .12 joins the first three (gaps .1) but not the second group (gaps .15); eps .1 − .03 = .07
    # joins nothing; eps .12 + .05 = .17 joins both groups.
    x = np.array([0, 0.1, 0.2, 1.0, 1.15, 1.3, 1.45])
    dist = np.abs(x[:, None] - x[None])
    cfg = setup_cfg("", ["CLUSTER.EPS", "0.12", "CLUSTER.MIN_SAMPLES", "2", "CLUSTER.RELIABILITY_EPS_GAP", "0.05",
                         "CLUSTER.SIZE_HISTOGRAM", "False"])
    result = PseudoLabeler(cfg, [])(torch.zeros(7, 2), dist=dist)
    labels = result.labels
    assert labels.tolist() == [0, 0, 0, -1, -1, -1, -1]
    assert result.core.tolist() == [True, True, True, False, False, False, False]
    assert result.labels_tight.tolist() == [-1] * 7
    assert result.labels_loose.tolist() == [0, 0, 0, 1, 1, 1, 1]


def test_diversity_selection_hand_computed():
    # One class, points on a line at 0 (a), 1 (b), 3 (c), 10 (d). Pairwise distances:
    # a [0 1 3 10], b [1 0 2 9], c [3 2 0 7], d [10 9 7 0] → d̄ = a 3.5, b 3, c 3, d 6.5.
    # Visit order d, a, b, c. d is taken; a: D(a,d) = 10 ≥ d̄_d = 6.5 → taken; b: D(b,a) = 1 < d̄_a
    # = 3.5 → no; c: D(c,a) = 3 < 3.5 → no. Selected {a, d}.
    x = torch.tensor([[[0.0, 0], [1, 0], [3, 0], [10, 0]]])
    valid = torch.ones(1, 4, dtype=torch.bool)
    sel, mean = diversity_selection(x, valid, valid, 3)
    assert sel.tolist() == [[True, False, False, True]]
    assert torch.allclose(mean, torch.tensor([[3.5, 3.0, 3.0, 6.5]]), atol=1e-5)
    # a unreliable: b is next (D(b,d) = 9 ≥ 6.5) → {b, d}; c: D(c,b) = 2 < d̄_b = 3 → no
    reliable = torch.tensor([[False, True, True, True]])
    assert diversity_selection(x, valid, reliable, 3)[0].tolist() == [[False, True, False, True]]
    # the first pick is never gated, and at most M are taken
    assert diversity_selection(x, valid, torch.zeros_like(valid), 3)[0].tolist() == [[False, False, False, True]]
    assert diversity_selection(x, valid, valid, 1)[0].tolist() == [[False, False, False, True]]


def test_diversity_memory_update_hand_computed():
    # K = 2, M = 2; rows: 0 c0 central, 1 c1 central, 2 c0 slot 1, 3 c1 slot 1, 4 c0 slot 2, 5 c1 slot 2.
    # Batch [a, e, b, c, d] with labels [1, 0, 1, 1, 1]; a..d as above, e = (0, 5) alone in class 0.
    # μ = 0.5, no re-normalisation. Class 1 mines {a, d} (batch order: a → slot 1, d → slot 2);
    # medoid b (d̄ 3, first of the tie with c). Class 0: e is its selection and its medoid.
    #   row 3 = .5·(0,1) + .5·a = (0, .5);  row 5 = .5·(0,1) + .5·d = (5, .5);  row 1 = .5·(0,1) + .5·b = (.5, .5)
    #   row 2 = .5·(1,0) + .5·e = (.5, 2.5);  row 0 = (.5, 2.5);  row 4 unchanged (1, 0)
    memory = DiversityMemory(2, num_marginal=2, old_weight=0.5, renormalize=False)
    memory.reset(torch.tensor([[1.0, 0.0], [0.0, 1.0]]))
    x = torch.tensor([[0.0, 0], [0, 5], [1, 0], [3, 0], [10, 0]])
    memory.update(x, torch.tensor([1, 0, 1, 1, 1]))
    expected = torch.tensor([[0.5, 2.5], [0.5, 0.5], [0.5, 2.5], [0, 0.5], [1, 0], [5, 0.5]])
    assert torch.allclose(memory.features, expected)


def test_diversity_memory_gate_and_renormalisation():
    memory = DiversityMemory(2, num_marginal=2, old_weight=0.5, gate=True, renormalize=True)
    memory.reset(torch.tensor([[1.0, 0.0], [0.0, 1.0]]))
    x = torch.tensor([[0.0, 0], [0, 5], [1, 0], [3, 0], [10, 0]])
    memory.update(x, torch.tensor([1, 0, 1, 1, 1]), reliable=torch.tensor([False, True, True, True, True]))
    # a is gated out, so b fills class 1's slot 1 and d its slot 2: (0,1)/2 + (1,0)/2 → (.7071, .7071)
    assert torch.allclose(memory.features[3], torch.tensor([0.7071, 0.7071]), atol=1e-4)
    assert torch.allclose(memory.features.norm(dim=1), torch.ones(6))
    off = DiversityMemory(2, num_marginal=2, old_weight=0.5, gate=False)   # CMhybrid_v4
    off.reset(torch.tensor([[1.0, 0.0], [0.0, 1.0]]))
    off.update(x, torch.tensor([1, 0, 1, 1, 1]), reliable=torch.tensor([False, True, True, True, True]))
    assert torch.allclose(off.features[3], torch.tensor([0.0, 1.0]))       # a = (0,0) mined: (0, .5) → (0, 1)


def test_center_margin_loss_hand_computed():
    # K = 2, M = 2, y = 0; columns [central k0 k1 | slot 1 k0 k1 | slot 2 k0 k1] = [2 1 | 1 3 | 3 0].
    # L_center = CE([2, 1], 0) = log(1 + e^−1) = 0.313262.  Margin logits: own class mean(1, 3) = 2,
    # other class max(3, 0) = 3 → L_margin = CE([2, 3], 0) = log(1 + e) = 1.313262.
    # w = 0.25: 0.75·0.313262 + 0.25·1.313262 = 0.563262.
    # ε = 0.1 (q = [.95, .05]): center .95·.313262 + .05·1.313262 = .363262, margin .95·1.313262 +
    # .05·.313262 = 1.263262 → 0.75·.363262 + 0.25·1.263262 = 0.588262.
    logits = torch.tensor([[2.0, 1, 1, 3, 3, 0]])
    y = torch.tensor([0])
    assert center_margin_loss(logits, y, 2, 0.25).item() == pytest.approx(0.563262, abs=1e-6)
    assert center_margin_loss(logits, y, 2, 0.25, epsilon=0.1).item() == pytest.approx(0.588262, abs=1e-6)
    with pytest.raises(ValueError, match="NUM_MARGINAL"):
        center_margin_loss(torch.zeros(1, 5), y, 2, 0.5)


def test_chunk_centroids_like_torch_chunk():
    # cluster 0: members 1..5 (1-D). M = 2 → runs of ⌈5/2⌉ = 3: [1 2 3] → 2, [4 5] → 4.5.
    # M = 4 → runs of 2: [1 2] 1.5, [3 4] 3.5, [5] 5, and an empty fourth run → fallback 9.
    # cluster 1: one member 10 → [10], then fallback 7. The outlier (−1, value 100) is ignored.
    f = torch.tensor([[1.0], [2], [100], [3], [4], [10], [5]])
    labels = np.array([0, 0, -1, 0, 0, 1, 0])
    out = chunk_centroids(f, labels, 2, torch.tensor([[9.0], [7.0]]))
    assert out.squeeze(2).tolist() == [[2.0, 4.5], [10.0, 7.0]]
    out = chunk_centroids(f, labels, 4, torch.tensor([[9.0], [7.0]]))
    assert out.squeeze(2).tolist() == [[1.5, 3.5, 5.0, 9.0], [10.0, 7.0, 7.0, 7.0]]


def make_model(extra=()):
    torch.manual_seed(0)
    return build_model(setup_cfg("", SMALL + ["MODEL.MEMORY.NUM_MARGINAL", "2", *extra]))


def test_reset_uses_core_samples_and_aligns_reliability_with_the_training_list():
    model = make_model()
    f = torch.nn.functional.normalize(torch.randn(7, 512), dim=1)
    labels = np.array([0, 0, -1, 0, 1, 1, 1])
    core = np.array([True, False, True, True, False, False, False])      # cluster 1 has no core sample
    # the tight labelling splits cluster 0 into {0}, {1, 3}; the loose one moves sample 6 out of cluster 1
    tight = np.array([2, 0, -1, 0, 1, 1, 1])
    loose = np.array([0, 0, -1, 0, 1, 1, 2])
    model.reset_pseudo_labels(ClusterResult(labels, features=f, core=core, labels_tight=tight, labels_loose=loose))
    central = model.memory.features[:2]
    assert torch.allclose(central[0], torch.nn.functional.normalize(f[[0, 3]].mean(0), dim=0), atol=1e-6)
    assert torch.allclose(central[1], torch.nn.functional.normalize(f[[4, 5, 6]].mean(0), dim=0), atol=1e-6)
    # R_comp = IoU(S, S_t): 0 → 1/3, 1 → 2/3, 3 → 2/3, 4..6 → 1; R_indep = IoU(S, S_l): 0, 1, 3 → 1,
    # 4, 5 → 2/3, 6 → 1/3. Each sample has a score ≥ 0.2 × its cluster's max: all 6 kept samples pass;
    # R_comp alone at ratio 0.6 (threshold 0.4 in cluster 0) fails sample 0.
    assert model.reliable.tolist() == [True] * 6
    assert np.allclose(label_iou(labels, loose)[4:], [2 / 3, 2 / 3, 1 / 3])
    comp = label_iou(labels, tight)
    assert np.allclose(comp[[0, 1, 3]], [1 / 3, 2 / 3, 2 / 3])
    assert cluster_relative_gate(labels, [comp], 0.6)[[0, 1, 3]].tolist() == [False, True, True]


def test_batch_index_selects_the_reliability_of_the_training_list():
    model = make_model(["MODEL.MEMORY.RELIABILITY_RATIO", "0.6"]).train()
    f = torch.nn.functional.normalize(torch.randn(6, 512), dim=1)
    labels = np.array([0, -1, 0, 0, 1, 1])
    tight = np.array([2, -1, 0, 0, 1, 1])       # sample 0 splits off: IoU 1/3 < 0.6 · 2/3
    # loose = labels: R_indep = 1 everywhere, so every kept sample passes
    model.reset_pseudo_labels(ClusterResult(labels, features=f, labels_tight=tight, labels_loose=labels))
    assert model.reliable.tolist() == [True] * 5
    # both scores split sample 0 off: it fails; kept samples 0, 2, 3, 4, 5 are training positions 0..4
    model.reset_pseudo_labels(ClusterResult(labels, features=f, labels_tight=tight, labels_loose=tight))
    assert model.reliable.tolist() == [False, True, True, True, True]
    seen = {}
    model.memory.update = lambda x, y, reliable=None: seen.setdefault("reliable", reliable)
    per_sample = {"pooled": torch.randn(3, 512), "teacher_pooled": torch.randn(3, 512)}
    model.batch_losses(per_sample, torch.tensor([0, 0, 1]), index=torch.tensor([2, 0, 4]))
    assert seen["reliable"].tolist() == [True, False, True]


def test_teacher_follows_student_and_gives_eval_features():
    model = make_model().eval()
    images = torch.randn(2, 3, 64, 32)
    with torch.no_grad():
        for p in model.student.parameters():
            p.mul_(1.5)
        expected = model.teacher.embed(model.teacher.pooled(images))
        assert torch.allclose(model({"images": images}), expected)
        assert not torch.allclose(model.student.embed(model.student.pooled(images)), expected)
    t0 = next(model.teacher.parameters()).clone()
    s0 = next(model.student.parameters()).clone()
    model.update_teacher(3)                                  # α = min(1 − 1/4, 0.999) = 0.75
    assert torch.allclose(next(model.teacher.parameters()), 0.75 * t0 + 0.25 * s0)
    assert not any(p.requires_grad for p in model.teacher.parameters())


def test_gradient_accumulation_passes_the_batch_index():
    model = make_model().train()
    model.reset_pseudo_labels(ClusterResult(np.repeat(np.arange(4), 2), features=torch.randn(8, 512)))
    seen = []
    update = model.memory.update
    model.memory.update = lambda x, y, reliable=None: (seen.append(reliable), update(x, y, reliable))
    trainer = SimpleTrainer(model, torch.optim.SGD(model.parameters(), lr=0.0))
    trainer.storage = EventStorage()
    trainer.forward_batch_size = 4
    batch = {"images": torch.randn(8, 3, 64, 32), "targets": torch.tensor([0, 0, 1, 1, 2, 2, 3, 3]),
             "index": torch.arange(8)}
    losses = trainer._forward_backward(batch)
    assert math.isfinite(losses["CenterMarginLoss"].item())
    assert seen and seen[0] is not None and len(seen[0]) == 8


@pytest.mark.parametrize("path", ["configs/CDSM/market1501.yml", "configs/CDSM/msmt17.yml",
                                  "configs/CDSM/dukemtmc.yml", "configs/Synthetic/cdsm.yml"])
def test_configs_load_and_build(path):
    cfg = setup_cfg(path, ["MODEL.BACKBONE.PRETRAIN", "False", "MODEL.BACKBONE.DEPTH", "18"])
    model = build_model(cfg)
    assert type(model).__name__ == "CDSM" and type(model.memory).__name__ == "DiversityMemory"
    assert cfg.CLUSTER.RELIABILITY_EPS_GAP == pytest.approx(0.02)
