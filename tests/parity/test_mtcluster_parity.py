"""AuxUSLReID parity: in reference mode (the keys configs/Base-MTCluster-reference.yml sets) every
piece computes what the released code's semantics define.

The expected values come from small oracles written in this file from the written description of
the released code (docs/reference_parity.md): a dense k-reciprocal Jaccard distance with the original
weights, the adaptive eps, the set-based ICDBSCAN, the centroid initialisation, the RLSCE map and
target, the losses and the EMA.  One test runs a whole pseudo-label round through the toolkit's
pipeline and one training step through the model, and compares both with the oracles.
"""
import copy
import math
import os

import numpy as np
import pytest
import scipy.sparse as sp
import torch
import torch.nn.functional as F
from sklearn.cluster import DBSCAN

from unreidusl.auxinfo import mine_train_aux
from unreidusl.cluster.icdbscan import constraint_sets, icdbscan
from unreidusl.cluster.pipeline import PseudoLabeler
from unreidusl.data import Sample
from unreidusl.engine import setup_cfg
from unreidusl.engine.teacher_hooks import EMATeacher
from unreidusl.auxinfo import AuxTerms
from unreidusl.modeling import build_model
from unreidusl.modeling.backbones.resnet import ResNetTrunk
from unreidusl.modeling.layers.batch_norm import SplitBatchNorm
from unreidusl.cluster import ClusterResult

from helpers import ROOT, dense_distance, flatten_cfg, main

CONFIGS = os.path.join(ROOT, "configs")
PAPER = [os.path.join(CONFIGS, f) for f in ("USL_MTCluster.yml", "USL_MTCluster_Duke.yml")]
FIXED = [os.path.join(CONFIGS, f) for f in ("USL_MTCluster_fixed.yml", "USL_MTCluster_Duke_fixed.yml")]
# Small-model overrides for the unit tests below (reference keys stay as the paper config sets them).
TINY = ["MODEL.BACKBONE.DEPTH", "18", "MODEL.BACKBONE.PRETRAIN", "False", "MODEL.LOSSES.ID_K", "2",
        "MODEL.DEVICE", "cpu"]


# --------------------------------------------------------------------------------------- oracles
def released_jaccard(x, k1=30, k2=6):
    """Dense k-reciprocal Jaccard distance of the released code: kNN by L2 on the features as given
    (k1 columns, self included), V = softmax(-(2 - 2<x_i, x_j>)) over the expanded set, query
    expansion over the first k2 neighbours, D = 1 - m / (2 - m), clipped at 0."""
    x = np.asarray(x, np.float64)
    n = x.shape[0]
    k1, k2 = min(k1, n), min(k2, n)
    sq = ((x[:, None, :] - x[None, :, :]) ** 2).sum(-1)
    rank = np.argsort(sq, axis=1, kind="stable")[:, :k1]

    def recip(i, k):
        fwd = rank[i, :k + 1]
        back = rank[fwd, :k + 1]
        return fwd[(back == i).any(1)]

    v = np.zeros((n, n))
    for i in range(n):
        r = recip(i, k1)
        exp = list(r)
        for c in r:
            rc = recip(c, int(np.around(k1 / 2)))
            if len(np.intersect1d(rc, r)) > 2 / 3 * len(rc):
                exp += list(rc)
        e = np.unique(exp)
        logits = -(2 - 2 * x[i] @ x[e].T)
        w = np.exp(logits - logits.max())
        v[i, e] = w / w.sum()
    if k2 != 1:
        v = np.stack([v[rank[i, :k2]].mean(0) for i in range(n)])
    m = np.minimum(v[:, None, :], v[None, :, :]).sum(-1)
    d = 1 - m / (2 - m)
    return np.where(d < 1e-9, 0.0, d)              # pairs of equal expanded rows: exactly 0


def released_adaptive_eps(d, rho=1.6e-3):
    u = np.sort(d[np.triu_indices(d.shape[0], 1)])
    u = u[u != 0]
    return float(u[:max(1, int(round(rho * u.size)))].mean())


def released_icdbscan(d, eps, min_samples, cl, relaxed):
    """The released ICDBSCAN on a dense float32 matrix, with the caller's list ``cl`` of sets
    modified in place (relaxation and growth), as its description says."""
    n = d.shape[0]
    nbr = {}
    for i in range(n):
        s = set([j for j in range(n) if d[i, j] <= eps and j != i])
        s.add(i)
        nbr[i] = s
    for i in range(n):
        if relaxed >= 0:
            r = set([j for j in range(n) if d[i, j] <= eps * relaxed and j != i])
        else:
            r = set([j for j in range(n) if d[i, j] > eps * -relaxed and j != i])
        r.add(i)
        cl[i] = cl[i] - r
    unclassified = -2
    assign = [unclassified] * n
    cid = 0
    for p in set(range(n)):
        if assign[p] != unclassified:
            continue
        temp, seeds = {p}, {p}
        assign[p] = cid
        cannot = cl[p]
        while seeds:
            cur = list(seeds)[0]
            cand = nbr[cur] - cl[cur] - cannot
            if len(cand) >= min_samples:
                for q in cand:
                    if assign[q] == unclassified and q not in cannot:
                        assign[q] = cid
                        temp.add(q)
                        cannot.update(cl[q])
                        seeds.add(q)
            seeds.remove(cur)
        if len(temp) < min_samples:
            for q in temp:
                assign[q] = unclassified
        else:
            cid += 1
    return np.array([-1 if a == unclassified else a for a in assign])


# ----------------------------------------------------------------------- the paper configs' keys
REFERENCE_KEYS = {
    "MODEL.BACKBONE.STEM_RELU": False, "MODEL.HEADS.FRAME_BN": True,
    "MODEL.LOSSES.RLSCE_MAP": "reference", "MODEL.BN_VIRTUAL_SPLITS": 4,
    "MODEL.BN_VIRTUAL_STATS": "first", "MEAN_TEACHER.EMA_CLASSIFIER": True,
    "MEAN_TEACHER.EMA_BUFFERS": False, "MEAN_TEACHER.EMA_STEP": "epoch_x_iters",
    "CLUSTER.FEATURE": "pre_bn", "CLUSTER.JACCARD_WEIGHTS": "dot", "CLUSTER.K1": 30, "CLUSTER.K2": 6,
    "CLUSTER.TOC.ORDER": "reference", "INPUT.CLIP_CONSISTENT": False,
    "SOLVER.SCHED": "ConstantLR", "SOLVER.RESET_OPTIMIZER_EACH_EPOCH": True,
    "TEST.SCP.LAMBDA": 0.03, "TEST.TOC.PENALTY": 1000.0,
}
FIXED_KEYS = {
    "MODEL.BACKBONE.STEM_RELU": True, "MODEL.LOSSES.RLSCE_MAP": "nearest_others",
    "MODEL.BN_VIRTUAL_SPLITS": 1, "CLUSTER.FEATURE": "embedding",
    "CLUSTER.JACCARD_WEIGHTS": "sqeuclidean", "CLUSTER.TOC.ORDER": "fifo",
    "INPUT.CLIP_CONSISTENT": True, "SOLVER.RESET_OPTIMIZER_EACH_EPOCH": False,
    "SOLVER.SCHED": "MultiStepLR", "TEST.TOC.PENALTY": math.inf,
}


def _get(cfg, key):
    return flatten_cfg(cfg)[key]


@pytest.mark.parametrize("path", PAPER)
def test_paper_configs_select_the_reference_behaviour(path):
    cfg = setup_cfg(path)
    for key, value in REFERENCE_KEYS.items():
        assert _get(cfg, key) == value, key
    assert cfg.MODEL.META_ARCHITECTURE == "MTCluster" and cfg.MODEL.BACKBONE.DEPTH == 50
    assert cfg.MODEL.LOSSES.NAME[:2] == ["RestrictedLabelSmoothingCrossEntropy",
                                         "WeightAdaptiveTripletLoss" if "Duke" in path else "SoftMarginTripletLoss"]
    assert cfg.DATALOADER.ITERS_CLUSTER_MULTIPLIER == 0.6


@pytest.mark.parametrize("paper,fixed", zip(PAPER, FIXED))
def test_fixed_configs_select_our_behaviour_and_nothing_else(paper, fixed):
    p, f = setup_cfg(paper), setup_cfg(fixed)
    for key, value in FIXED_KEYS.items():
        assert _get(f, key) == value, key
    differing = {k for k in FIXED_KEYS if _get(p, k) != _get(f, k)}
    assert differing == set(FIXED_KEYS) - {"MODEL.BN_VIRTUAL_STATS"}
    assert f.OUTPUT_DIR != p.OUTPUT_DIR and f.DATASETS.TRAIN == p.DATASETS.TRAIN


# ------------------------------------------------------------------------- row 5: stem
def test_stem_without_relu_is_conv_bn_maxpool():
    torch.manual_seed(0)
    trunk = ResNetTrunk(18, 2, stem_relu=False).eval()
    assert [type(m).__name__ for m in trunk.stem] == ["Conv2d", "BatchNorm2d", "MaxPool2d"]
    x = torch.randn(2, 3, 32, 16)
    by_hand = F.max_pool2d(trunk.stem[1](trunk.stem[0](x)), 3, 2, 1)
    assert torch.equal(trunk.stem(x), by_hand)
    assert (trunk.stem(x) < 0).any()                  # no ReLU: negative activations survive
    assert [type(m).__name__ for m in ResNetTrunk(18, 2).stem] == ["Conv2d", "BatchNorm2d", "ReLU",
                                                                    "MaxPool2d"]


# ------------------------------------------------------ rows 1 and 6: features of the model
def _reference_model(*extra):
    torch.manual_seed(3)
    return build_model(setup_cfg(PAPER[1], TINY + ["MODEL.BN_VIRTUAL_SPLITS", "1"] + list(extra)))


def test_frame_bn_test_feature_and_pre_bn_cluster_feature():
    model = _reference_model().eval()
    clips = torch.randn(3, 4, 3, 32, 16)
    t = model.teacher
    with torch.no_grad():
        x = torch.stack([t.pool(t.backbone(clips[:, k])).flatten(1) for k in range(4)], 1)  # [B, T, d]
        bn = (x - t.neck.running_mean) / torch.sqrt(t.neck.running_var + t.neck.eps) * t.neck.weight
        expected_test = F.normalize(bn, dim=2).mean(1)               # mean of unit BN features
        got_test = model({"images": clips})
        got_cluster = model.cluster_extractor()({"images": clips})
    assert torch.allclose(got_test, expected_test, atol=1e-5)
    assert not torch.allclose(got_test.norm(dim=1), torch.ones(3))   # not re-normalised
    assert torch.allclose(got_cluster, x.mean(1), atol=1e-5)         # raw, pre-BN, temporal mean
    # the frames-mode extraction of the video test sets gives the same feature
    with torch.no_grad():
        frames = model.frame_features(clips.flatten(0, 1)).view(3, 4, -1).mean(1)
        assert torch.allclose(model.embed(frames), expected_test, atol=1e-5)


def test_frame_bn_train_features_use_per_frame_batch_statistics():
    model = _reference_model().train()
    clips = torch.randn(4, 3, 3, 32, 16)
    s = model.student
    frames = s.frames_pooled(clips)                                   # [B, T, d]
    flat = frames.flatten(0, 1)
    mean, var = flat.mean(0), flat.var(0, unbiased=False)
    by_hand = ((flat - mean) / torch.sqrt(var + s.neck.eps) * s.neck.weight).view(4, 3, -1).mean(1)
    assert torch.allclose(s.bn_features(frames), by_hand, atol=1e-4)
    assert not torch.allclose(s.bn_features(frames), s.neck(frames.mean(1)), atol=1e-3)


# ------------------------------------------------------------------ row 1: Jaccard on raw features
def test_jaccard_with_original_weights_on_raw_features_matches_the_released_semantics():
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(6, 8)) * 3
    x = (centres[rng.integers(0, 6, 70)] + rng.normal(scale=0.8, size=(70, 8))).astype(np.float32)
    x *= rng.uniform(0.5, 2.0, size=(70, 1)).astype(np.float32)     # raw: norms vary
    cfg = setup_cfg(PAPER[1], TINY)
    from unreidusl.cluster.build import build_distance
    ours = dense_distance(build_distance(cfg)(torch.from_numpy(x)))
    expected = released_jaccard(x)
    assert np.abs(ours - expected).max() < 1e-5
    unit = dense_distance(build_distance(setup_cfg(FIXED[1], TINY))(torch.from_numpy(x)))
    assert np.abs(unit - expected).max() > 0.05                      # the key changes the result


# --------------------------------------------------------------------- row 12: ICDBSCAN
def _icdbscan_problem(rng, n, links):
    x = rng.normal(size=(n, 3)) + rng.integers(0, max(2, n // 8), n)[:, None] * 1.5
    d = np.sqrt(((x[:, None] - x[None]) ** 2).sum(-1))
    d = (d / d.max()).astype(np.float32)
    cl = [set() for _ in range(n)]
    for _ in range(links):
        a, b = (int(v) for v in rng.integers(0, n, 2))
        if a != b:
            cl[a].add(b)
            cl[b].add(a)
    return d, [set(sorted(s)) for s in cl]


@pytest.mark.parametrize("seed", range(12))
def test_icdbscan_reference_order_equals_the_released_algorithm(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(20, 90))
    d, cl = _icdbscan_problem(rng, n, int(rng.integers(n // 2, 3 * n)))
    eps = float(np.quantile(d[np.triu_indices(n, 1)], rng.uniform(0.03, 0.15)))
    relaxed = float(rng.choice([-1.0, -0.5, 0.0, 0.5, 1.0]))
    ours_sets, oracle_sets = [set(s) for s in cl], [set(s) for s in cl]
    for epoch in range(3):                          # the same lists across calls: constraints drift
        d_epoch = np.clip(d + np.float32(0.02 * epoch) * rng.random((n, n)).astype(np.float32), 0, 1)
        d_epoch = np.minimum(d_epoch, d_epoch.T)
        np.fill_diagonal(d_epoch, 0)
        expected = released_icdbscan(d_epoch, eps, 3, oracle_sets, relaxed)
        got = icdbscan(d_epoch, eps, 3, ours_sets, relaxed, order="reference")
        assert np.array_equal(got, expected), (seed, epoch)
        assert [list(s) for s in ours_sets] == [list(s) for s in oracle_sets]   # same sets, same order
    # the sets changed in place over the calls (relaxation and growth)
    assert [set(s) for s in ours_sets] != cl


def test_icdbscan_reference_order_on_a_sparse_distance_equals_the_dense_oracle():
    rng = np.random.default_rng(42)
    n = 80
    d, cl = _icdbscan_problem(rng, n, 200)
    eps = float(np.quantile(d[np.triu_indices(n, 1)], 0.1))
    keep = d <= 0.5                                          # store only D <= 0.5; unstored = 1
    sparse = sp.csr_matrix((d[keep], np.nonzero(keep)), shape=(n, n))
    dense_view = np.where(keep, d, np.float32(1.0))
    for relaxed in (-1.0, 0.0, 1.0):
        expected = released_icdbscan(dense_view, eps, 3, [set(s) for s in cl], relaxed)
        got = icdbscan(sparse, eps, 3, [set(s) for s in cl], relaxed, order="reference")
        assert np.array_equal(got, expected), relaxed


def test_icdbscan_clusterer_keeps_its_constraint_sets_across_calls():
    from unreidusl.cluster.build import CLUSTERER_REGISTRY
    rng = np.random.default_rng(5)
    n = 50
    d, cl = _icdbscan_problem(rng, n, 120)
    csr = sp.csr_matrix((np.ones(sum(map(len, cl)), bool),
                         (np.repeat(np.arange(n), [len(s) for s in cl]),
                          [j for s in cl for j in sorted(s)])), shape=(n, n))
    cfg = setup_cfg(PAPER[1], TINY + ["CLUSTER.TOC.RELAXED", "0.0", "CLUSTER.MIN_SAMPLES", "3"])
    clusterer = CLUSTERER_REGISTRY.get("ICDBSCAN")(cfg)
    eps = float(np.quantile(d[np.triu_indices(n, 1)], 0.1))
    oracle = constraint_sets(csr, n)
    assert [list(s) for s in oracle] == [list(set(sorted(s))) for s in cl]   # ascending insertion
    for _ in range(2):
        expected = released_icdbscan(d, eps, 3, oracle, 0.0)
        assert np.array_equal(clusterer(d, eps=eps, cannot_link=csr).labels, expected)
    assert clusterer.constraint_sets is not None
    assert [list(s) for s in clusterer.constraint_sets] == [list(s) for s in oracle]


# --------------------------------------------------- rows 2, 3: classifier init and RLSCE map
def test_classifier_init_and_reference_rlsce_map_from_raw_centroids():
    model = _reference_model()
    rng = np.random.default_rng(1)
    d = model.student.feat_dim
    feats = torch.from_numpy((rng.normal(size=(40, d)) * rng.uniform(1, 5, (40, 1))).astype(np.float32))
    labels = np.array([i % 7 for i in range(36)] + [-1] * 4)
    model.reset_pseudo_labels(ClusterResult(labels, features=feats))
    means = np.stack([feats.numpy()[labels == k].mean(0) for k in range(7)])
    unit = means / np.linalg.norm(means, axis=1, keepdims=True)
    assert np.allclose(model.student_classifier.weight.detach().numpy(), unit, atol=1e-6)
    assert np.allclose(model.teacher_classifier.weight.detach().numpy(), unit, atol=1e-6)
    jac = released_jaccard(means)                                     # raw centroids
    expected = np.argsort(jac, axis=1, kind="stable")[:, :3]           # ID_K + 1 = 3, self included
    assert np.array_equal(model.cluster_neighbors.numpy(), expected)


def test_reference_rlsce_target_is_onehot_xor_map():
    cfg = setup_cfg(PAPER[1], TINY + ["MODEL.LOSSES.ID_K", "2", "MODEL.LOSSES.CE.EPSILON", "0.1"])
    from unreidusl.modeling.losses import LOSS_REGISTRY
    loss = LOSS_REGISTRY.get("RestrictedLabelSmoothingCrossEntropy")(cfg)
    logits = torch.tensor([[1.0, 0.5, -0.5, 0.2], [0.3, 0.1, 0.9, -1.0]])
    # row for class 0 includes itself (normal case); class 2's map misses it (y not in A[y])
    neighbours = torch.tensor([[0, 1, 3], [1, 0, 2], [1, 3, 0], [3, 2, 1]])
    targets = torch.tensor([0, 2])
    q = torch.tensor([[0.9, 0.05, 0.0, 0.05],                  # 1 - ε on y, ε/K on the K others
                      [0.05, 0.05, 0.9 + 0.05, 0.05]])         # y gets 1 - ε + ε/K, total 1.05
    expected = -(q * F.log_softmax(logits, 1)).sum(1).mean()
    got = loss({"logits": logits, "cluster_neighbors": neighbours}, targets)
    assert torch.allclose(got, expected, atol=1e-6)


# ------------------------------------------------------------------- row 4: EMA
def test_ema_covers_the_classifier_and_not_the_buffers():
    model = _reference_model()
    feats, labels = torch.randn(12, model.student.feat_dim), np.arange(12) % 3
    model.reset_pseudo_labels(ClusterResult(labels, features=feats))
    with torch.no_grad():
        model.student_classifier.weight.add_(1.0)
        model.student.neck.running_mean.fill_(5.0)
    t_cls = model.teacher_classifier.weight.detach().clone()
    s_cls = model.student_classifier.weight.detach().clone()
    t_buf = model.teacher.neck.running_mean.clone()
    model.update_teacher(global_step=4)                       # α = min(1 - 1/5, 0.999) = 0.8
    assert torch.allclose(model.teacher_classifier.weight, 0.8 * t_cls + 0.2 * s_cls, atol=1e-6)
    assert torch.equal(model.teacher.neck.running_mean, t_buf)


def test_ema_step_count_epoch_times_iterations():
    class Trainer:
        epoch, iters_per_epoch, inner_iter, iter = 3, 50, 7, 412

    seen = []
    model = type("M", (), {"update_teacher": lambda self, g: seen.append(g)})()
    for mode in ("epoch_x_iters", "global"):
        hook = EMATeacher(mode)
        hook.trainer = Trainer()
        hook.trainer.model = model
        hook.after_step()
    assert seen == [3 * 50 + 7, 412]


# -------------------------------------------------------------- rows 7, 8: test-time terms
def test_test_time_scp_weight_and_toc_penalty_of_the_paper_config():
    cfg = setup_cfg(PAPER[1])
    terms = AuxTerms(2, 3, overlap=np.array([[1, 0, 0], [0, 0, 1]]), same_camera=np.array([[1, 1, 0], [0, 1, 0]]),
                     cce_lambda=cfg.TEST.SCP.LAMBDA, overlap_penalty=cfg.TEST.TOC.PENALTY)
    d = terms.apply(np.array([[0.1, 0.2, 0.3], [0.4, 0.5, 0.6]]), 0)
    assert np.allclose(d, [[1000.13, 0.23, 0.3], [0.4, 0.53, 1000.6]])
    fixed = setup_cfg(FIXED[1])
    d = AuxTerms(1, 2, overlap=np.array([[1, 0]]), overlap_penalty=fixed.TEST.TOC.PENALTY).apply(
        np.array([[0.1, 0.2]]), 0)
    assert np.isinf(d[0, 0]) and d[0, 1] == 0.2


# ------------------------------------------------------------ rows 9, 10, 11: solver, input, BN
def test_optimizer_is_reset_each_epoch_with_a_constant_learning_rate():
    from unreidusl.engine.selection import ResetOptimizerEachEpoch
    from unreidusl.solver import build_lr_scheduler, build_optimizer
    cfg = setup_cfg(PAPER[1], TINY)
    model = torch.nn.Linear(3, 2)
    opt = build_optimizer(cfg, model)
    sched = build_lr_scheduler(cfg, opt)
    model(torch.randn(4, 3)).sum().backward()
    opt.step()
    for _ in range(3 * cfg.SOLVER.STEPS[-1]):
        sched.step()
    assert opt.param_groups[0]["lr"] == cfg.SOLVER.BASE_LR
    assert opt.state
    hook = ResetOptimizerEachEpoch()
    hook.trainer = type("T", (), {"optimizer": opt})()
    hook.before_epoch()
    assert not opt.state


def test_augmentation_is_drawn_per_frame():
    from unreidusl.data.transforms import build_transforms
    cfg = setup_cfg(PAPER[1], TINY + ["INPUT.SIZE_TRAIN", "[32,16]"])
    transform = build_transforms(cfg, is_train=True)
    torch.manual_seed(0)
    frame = torch.from_numpy(np.random.default_rng(0).integers(0, 255, (40, 20, 3), dtype=np.uint8))
    frames = frame.permute(2, 0, 1)[None].repeat(8, 1, 1, 1)          # uint8 [T, 3, H, W]
    clip = transform(frames)
    assert any(not torch.equal(clip[0], clip[k]) for k in range(1, 8))
    same = build_transforms(setup_cfg(FIXED[1], TINY + ["INPUT.SIZE_TRAIN", "[32,16]"]), is_train=True)
    clip = same(frames)
    assert all(torch.equal(clip[0], clip[k]) for k in range(1, 8))


def test_split_batch_norm_keeps_the_first_replicas_running_statistics():
    torch.manual_seed(0)
    bn = SplitBatchNorm(3, splits=4, stats="first", momentum=0.1)
    x = torch.randn(16, 3) * torch.tensor([1.0, 2.0, 3.0]) + torch.arange(16.0)[:, None]
    y = bn(x)
    for g in range(4):
        chunk = x[4 * g:4 * g + 4]
        by_hand = (chunk - chunk.mean(0)) / torch.sqrt(chunk.var(0, unbiased=False) + bn.eps)
        assert torch.allclose(y[4 * g:4 * g + 4], by_hand, atol=1e-5)
    first = x[:4]
    assert torch.allclose(bn.running_mean, 0.1 * first.mean(0), atol=1e-6)
    assert torch.allclose(bn.running_var, 0.9 + 0.1 * first.var(0, unbiased=True), atol=1e-5)


# --------------------------------------------------- a whole pseudo-label round, reference mode
def _tracklets(rng, n, cams=3):
    out = []
    for i in range(n):
        start = float(rng.integers(0, 600))
        ts = tuple(start + np.arange(10, dtype=float))
        frames = tuple(f"/d/train/{i:04d}/c{i % cams}/f{j}.jpg" for j in range(10))
        out.append(Sample(frames, i % 9, int(rng.integers(0, cams)), ts))
    return out


def test_one_pseudo_label_round_in_reference_mode(tmp_path):
    rng = np.random.default_rng(11)
    n, k = 120, 9
    samples = _tracklets(rng, n)
    pids = np.array([s.pid for s in samples])
    # raw features with norms around 1.4: the original weights are peaked but not one-hot (with far
    # larger norms most distances collapse to 0 and eps to rounding noise, in the original too)
    centres = rng.normal(size=(k, 16)) * 0.3
    x = (centres[pids] + rng.normal(scale=0.3, size=(n, 16))) * rng.uniform(0.7, 1.6, (n, 1))
    x = x.astype(np.float32)
    opts = TINY + ["CLUSTER.TOC.ENABLED", "True", "CLUSTER.TOC.RELAXED", "-1.0",
                   "CLUSTER.SCP.ENABLED", "True", "CLUSTER.STS.ENABLED", "False", "CLUSTER.MIN_SAMPLES", "4",
                   "CLUSTER.SIZE_HISTOGRAM", "False", "CLUSTER.ADAPTIVE_RHO", "0.03"]
    cfg = setup_cfg(PAPER[1], opts)
    assert cfg.CLUSTER.ADAPTIVE and cfg.CLUSTER.SCP.LAMBDA == 0.006
    labeler = PseudoLabeler(cfg, samples, str(tmp_path))
    result = labeler(torch.from_numpy(x))
    labels, info = result.labels, {"eps": result.eps}
    # the oracle: Jaccard on raw features, + 0.006 x same camera, adaptive eps, released ICDBSCAN
    same = np.array([[a.camid == b.camid for b in samples] for a in samples], np.float64)
    d = (released_jaccard(x) + 0.006 * same).astype(np.float32)
    eps = released_adaptive_eps(d, rho=0.03)             # rho sized for 120 samples (1.6e-3 for ~8k)
    assert info["eps"] == pytest.approx(eps, rel=1e-5)
    cl = constraint_sets(mine_train_aux(samples).cannot_link, n)
    assert sum(map(len, cl)) > 0
    expected = released_icdbscan(d, info["eps"], 4, cl, -1.0)
    assert np.array_equal(labels, expected)
    assert labels.max() >= 3
    # classifier initialisation and the RLSCE map
    model = _reference_model("MODEL.LOSSES.ID_K", "3")
    feats = torch.from_numpy(np.pad(x, ((0, 0), (0, model.student.feat_dim - 16))))
    model.reset_pseudo_labels(ClusterResult(labels, features=feats))
    c = labels.max() + 1
    means = np.stack([feats.numpy()[labels == j].mean(0) for j in range(c)])
    assert np.allclose(model.student_classifier.weight.detach().numpy(),
                       means / np.linalg.norm(means, axis=1, keepdims=True), atol=1e-6)
    expected_map = np.argsort(released_jaccard(means), axis=1, kind="stable")[:, :4]
    assert np.array_equal(model.cluster_neighbors.numpy(), expected_map)
    # and the fifo default of DBSCAN without constraints is plain DBSCAN
    plain = DBSCAN(eps=info["eps"], min_samples=4, metric="precomputed").fit_predict(d)
    assert plain.max() >= 1


# ------------------------------------------------------------- one training step, reference mode
def _hardest(dist, targets):
    same = targets[:, None] == targets[None]
    ap = torch.where(same, dist, torch.full_like(dist, -1e9)).max(1)
    an = torch.where(~same, dist, torch.full_like(dist, 1e9)).min(1)
    return ap, an


def _pairwise(f):
    sq = (f * f).sum(1)
    return torch.sqrt(torch.clamp(sq[:, None] + sq[None] - 2 * f @ f.t(), min=1e-12))


def test_one_training_step_in_reference_mode():
    cfg_opts = TINY + ["MODEL.BN_VIRTUAL_SPLITS", "2", "MODEL.LOSSES.ID_K", "1"]
    torch.manual_seed(7)
    model = build_model(setup_cfg(PAPER[1], cfg_opts)).train()
    b, t = 8, 2
    clips = torch.randn(b, t, 3, 32, 16)
    targets = torch.tensor([0, 0, 0, 0, 1, 1, 1, 1])
    model.reset_pseudo_labels(ClusterResult(np.array([0, 0, 0, 1, 1, 1]), features=torch.randn(6, model.student.feat_dim)))
    teacher = copy.deepcopy(model.teacher)
    student = copy.deepcopy(model.student)
    losses = model({"images": clips, "targets": targets})

    def features(enc):
        x = enc.frames_pooled(clips)                                   # [B, T, d]
        flat = x.flatten(0, 1).view(2, b * t // 2, -1)                 # two virtual BN replicas
        mean, var = flat.mean(1, keepdim=True), flat.var(1, unbiased=False, keepdim=True)
        bn = ((flat - mean) / torch.sqrt(var + enc.neck.eps) * enc.neck.weight).view(b, t, -1).mean(1)
        return x.mean(1), bn

    with torch.no_grad():
        t_f, t_bn = features(teacher)
        t_logits = t_bn @ model.teacher_classifier.weight.t()
    s_f, s_bn = features(student)
    logits = s_bn @ model.student_classifier.weight.t()
    eps_ls = 0.1
    q = torch.zeros(b, 2)
    q[targets == 0] = torch.tensor([1 - eps_ls, eps_ls])               # A[0] = {0, 1}, K = 1
    q[targets == 1] = torch.tensor([eps_ls, 1 - eps_ls])
    l_id = -(q * F.log_softmax(logits, 1)).sum(1).mean()
    dist = _pairwise(s_f)
    (d_ap, i_ap), (d_an, i_an) = _hardest(dist, targets)
    tt = d_ap - d_an + 0.5
    l_tri = torch.where(tt > 0, torch.exp(-0.01 * tt) * tt, torch.zeros_like(tt)).mean()
    l_sce = -(t_logits.softmax(1) * F.log_softmax(logits, 1)).sum(1).mean()
    t_dist = _pairwise(t_f)
    target = torch.stack([t_dist.gather(1, i_ap[:, None])[:, 0], t_dist.gather(1, i_an[:, None])[:, 0]], 1).softmax(1)
    l_stri = -(target * F.log_softmax(torch.stack([d_ap, d_an], 1), 1)).sum(1).mean()
    expected = {"RestrictedLabelSmoothingCrossEntropy": 0.5 * l_id, "WeightAdaptiveTripletLoss": 0.2 * l_tri,
                "SoftCrossEntropyLoss": 0.5 * l_sce, "SoftTripletLoss": 0.8 * l_stri}
    assert set(losses) == set(expected)
    for name, value in expected.items():
        assert torch.allclose(losses[name], value, atol=1e-4), name
    # EMA after the step: parameters (classifier included) move, teacher BN buffers are its own
    opt = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=1e-3)
    sum(losses.values()).backward()
    opt.step()
    before = {n: p.detach().clone() for n, p in model.teacher.named_parameters()}
    buffers = {n: v.clone() for n, v in model.teacher.named_buffers()}
    model.update_teacher(global_step=9)                               # α = 0.9
    for (name, p), s in zip(model.teacher.named_parameters(), model.student.parameters()):
        assert torch.allclose(p, 0.9 * before[name] + 0.1 * s.detach(), atol=1e-6), name
    for name, v in model.teacher.named_buffers():
        assert torch.equal(v, buffers[name]), name


@pytest.mark.slow
def test_duke_paper_config_trains_one_short_epoch_on_a_synthetic_twin(tmp_path, capsys):
    """configs/USL_MTCluster_Duke.yml as shipped (ResNet-50, every reference behaviour, TOC / SCP /
    STS at test time), with DATASETS.ROOT at a generated DukeMTMC-VideoReID twin, ImageNet weights
    off, and only sizes shrunk for a CPU: one epoch trains and is evaluated."""
    from unreidusl.data.synthetic import make_synthetic

    root = tmp_path / "datasets"
    make_synthetic(root=str(root), fmt="dukemtmc-videoreid", seed=0, preset="tiny")
    out = tmp_path / "run"
    rc = main(["--config-file", PAPER[1], "DATASETS.ROOT", str(root), "DATASETS.CACHE_DIR", str(tmp_path / "cache"),
               "MODEL.BACKBONE.PRETRAIN", "False", "OUTPUT_DIR", str(out), "SOLVER.MAX_EPOCHS", "1",
               "INPUT.SIZE_TRAIN", "[64,32]", "INPUT.SIZE_TEST", "[64,32]", "DATALOADER.NUM_WORKERS", "0",
               "DATASETS.DENSE_STEP", "8", "DATALOADER.CLUSTER_SEQ_LEN", "8", "SOLVER.IMS_PER_BATCH", "16",
               "CLUSTER.ADAPTIVE_RHO", "0.02", "CLUSTER.MIN_SAMPLES", "2", "CLUSTER.EMPTY_POLICY", "relax",
               "LOG.TENSORBOARD", "False", "TEST.EVAL_AT_START", "False"])
    assert rc == 0
    log = (out / "log.txt").read_text()
    assert "Pseudo-labels for epoch 1" in log and "Evaluation after epoch 1" in log
    assert (out / "model_final.pth").is_file()
    cfg_text = (out / "config.yaml").read_text()
    assert "FRAME_BN: true" in cfg_text and "ORDER: reference" in cfg_text
