"""3C's model side: CIE weighting, the CHD / TCCL memory updates, the ThreeC
meta-architecture, the warm-up LR schedule and the configs."""
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from unreidusl.engine import setup_cfg
from unreidusl.modeling import build_model
from unreidusl.modeling.losses import CIEWeightedCrossEntropy, camera_entropy
from unreidusl.modeling.memory import ClusterMemory
from unreidusl.solver import build_lr_scheduler
from unreidusl.cluster import ClusterResult

from helpers import tiny_opts

# the paper's worked example (its framework figure): clusters with cameras (1,2,3,3), (3,3,3,3), (1,1,2,2)
TARGETS = torch.tensor([0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2])
CAMIDS = torch.tensor([1, 2, 3, 3, 3, 3, 3, 3, 1, 1, 2, 2])


def test_camera_entropy_worked_example():
    # H = -Σ p log2 p: (1/4, 1/4, 1/2) -> 1.5; (1) -> 0; (1/2, 1/2) -> 1
    h = camera_entropy(TARGETS, CAMIDS, 4)
    assert torch.allclose(h, torch.tensor([1.5, 0.0, 1.0, 0.0]))


def test_cie_weights_worked_example():
    # w_k = 3·e^{H_k} / (e^1.5 + e^0 + e^1) = 3·(4.4817, 1, 2.7183) / 8.2000 = 1.6397, 0.3659, 0.9945
    # (the paper's 1.64, 0.37, 0.99); class 3 is absent from the batch and takes no share
    cfg = setup_cfg("", ["MODEL.LOSSES.CIE.SCOPE", "batch"])
    logits = torch.randn(12, 4)
    loss = CIEWeightedCrossEntropy(cfg)({"logits": logits, "camids": CAMIDS}, TARGETS)
    w = torch.tensor([1.6397, 0.3659, 0.9945])[TARGETS]
    expected = (w * F.cross_entropy(logits, TARGETS, reduction="none")).mean()
    assert loss.item() == pytest.approx(expected.item(), rel=1e-4)


def test_cie_cluster_scope_uses_the_pseudo_label_set_entropy():
    # entropies (1, 1, 0, 0) over the set although the batch shows other cameras: with classes 0 and 2
    # in the batch, w = 2·(e, 1)/(e + 1) = (1.4621, 0.5379)
    cfg = setup_cfg("", ["MODEL.LOSSES.CIE.SCOPE", "cluster"])
    targets = torch.tensor([0, 0, 2, 2])
    logits = torch.randn(4, 4)
    outputs = {"logits": logits, "cluster_camera_entropy": torch.tensor([1.0, 1.0, 0.0, 0.0])}
    w = torch.tensor([1.4621, 1.4621, 0.5379, 0.5379])
    expected = (w * F.cross_entropy(logits, targets, reduction="none")).mean()
    assert CIEWeightedCrossEntropy(cfg)(outputs, targets).item() == pytest.approx(expected.item(), rel=1e-4)
    with pytest.raises(ValueError, match="one camera entropy per cluster"):
        CIEWeightedCrossEntropy(cfg)({"logits": logits, "cluster_camera_entropy": torch.zeros(0)}, targets)


def _memory(mode, singleton="cluster"):
    memory = ClusterMemory(2, old_weight=0.1, update=mode, chd_singleton=singleton)
    memory.reset(torch.tensor([[1.0, 0.0]]))
    return memory


# one cluster, proxy m = (1, 0): x1 = (1, 0) and x2 = (0, 1) from camera 0, x3 = (-.8, -.6) alone on camera 1
X = torch.tensor([[1.0, 0.0], [0.0, 1.0], [-0.8, -0.6]])
Y, CAMS = torch.tensor([0, 0, 0]), torch.tensor([0, 0, 1])


def test_chd_update_hand_computed():
    # camera-0 centre (.7071, .7071): s1 = s2 = 1.7071; d1 = 0 -> CHD 0; d2 = 1 -> CHD = 1.7071/2.7071 = .6306
    # x3 alone, d3 = 1.8. "max" (3C's code): s3 = 2 -> CHD = 3.6/3.8 = .947 wins;
    # m <- normalize(.1·(1, 0) + .9·(-.8, -.6)) = normalize(-.62, -.54) = (-.7541, -.6568)
    memory = _memory("chd", "max")
    memory.update(X, Y, CAMS)
    assert torch.allclose(memory.features, torch.tensor([[-0.7541, -0.6568]]), atol=1e-4)
    # "cluster": s3 = 1 + cos(x3, normalize(.2, .4)) = 1 - .8944 = .1056 -> CHD = .0997 < .6306: x2 wins;
    # m <- normalize(.1, .9) = (.1104, .9939)
    memory = _memory("chd", "cluster")
    memory.update(X, Y, CAMS)
    assert torch.allclose(memory.features, torch.tensor([[0.1104, 0.9939]]), atol=1e-4)
    with pytest.raises(ValueError, match="camera ids"):
        memory.update(X, Y)


def test_tccl_update_uses_the_least_similar_camera_mean():
    # camera means: (.7071, .7071) with cos .7071 to m; (-.8, -.6) with cos -.8 -> the latter updates m
    memory = _memory("tccl")
    memory.update(X, Y, CAMS)
    assert torch.allclose(memory.features, torch.tensor([[-0.7541, -0.6568]]), atol=1e-4)


def test_chd_picks_per_cluster_in_one_batch():
    # two clusters with swapped roles: each gets exactly one update, from its own hardest sample
    memory = ClusterMemory(2, old_weight=0.0, update="chd", chd_singleton="max")
    memory.reset(torch.tensor([[1.0, 0.0], [0.0, 1.0]]))
    x = torch.tensor([[1.0, 0.0], [0.6, 0.8], [0.0, 1.0], [0.8, 0.6]])
    memory.update(x, torch.tensor([0, 0, 1, 1]), torch.tensor([0, 1, 0, 1]))
    # all groups are singletons (s = 2): CHD grows with d, so the least similar sample wins per cluster
    assert torch.allclose(memory.features, torch.tensor([[0.6, 0.8], [0.8, 0.6]]))


def _tiny_cfg(*opts):
    return setup_cfg("configs/Synthetic/3c.yml", ["MODEL.DEVICE", "cpu", *opts])


def test_three_c_routes_camera_ids_and_initialises_from_core_members():
    model = build_model(_tiny_cfg())
    features = F.normalize(torch.randn(6, model.encoder.feat_dim), dim=1)
    labels = np.array([0, 0, 0, 1, 1, -1])
    core = np.array([0, 0, -1, 1, 1, -1])                 # sample 2 is peripheral
    model.reset_pseudo_labels(ClusterResult(labels, features=features, camids=torch.tensor([0, 1, 1, 2, 2, 0]), centroid_labels=core))
    expected = F.normalize(torch.stack([features[:2].mean(0), features[3:5].mean(0)]), dim=1)
    assert torch.allclose(model.memory.features, expected, atol=1e-6)
    # cameras (0, 1, 1) -> H = -(1/3 log2 1/3 + 2/3 log2 2/3) = .9183; (2, 2) -> 0
    assert torch.allclose(model.cluster_camera_entropy, torch.tensor([0.9183, 0.0]), atol=1e-4)
    model.train()
    batch = {"images": torch.randn(4, 3, 64, 32), "targets": torch.tensor([0, 0, 1, 1]),
             "camids": torch.tensor([0, 1, 2, 2])}
    before = model.memory.features.clone()
    losses = model(batch)
    assert set(losses) == {"CIEWeightedCrossEntropy"} and torch.isfinite(losses["CIEWeightedCrossEntropy"])
    assert not torch.allclose(before, model.memory.features)
    assert model.batch_keys == ("camids",)


def test_warmup_multistep_schedule_matches_3c():
    # A.9: epochs 0-9 rise from 3.5e-5 (0.1x) to 3.185e-4; 10-29 at 3.5e-4; 30-49 at 3.5e-5; 50- at 3.5e-6
    cfg = setup_cfg("configs/Base-3C.yml", [])
    opt = torch.optim.Adam([torch.nn.Parameter(torch.zeros(1))], lr=cfg.SOLVER.BASE_LR)
    sched = build_lr_scheduler(cfg, opt)
    lrs = []
    for _ in range(60):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    for epoch, lr in [(0, 3.5e-5), (9, 3.185e-4), (10, 3.5e-4), (29, 3.5e-4), (30, 3.5e-5), (50, 3.5e-6)]:
        assert math.isclose(lrs[epoch], lr, rel_tol=1e-9), epoch
    bad = setup_cfg("configs/Base-3C.yml", ["SOLVER.SCHED", "CosineLR"])
    with pytest.raises(ValueError, match="WARMUP_EPOCHS"):
        build_lr_scheduler(bad, opt)


@pytest.mark.parametrize("path", ["configs/3C/market1501.yml", "configs/3C/msmt17.yml", "configs/3C/veri776.yml",
                                  "configs/Synthetic/3c.yml"])
def test_configs_load_and_build(path):
    cfg = setup_cfg(path, ["MODEL.BACKBONE.PRETRAIN", "False", "MODEL.BACKBONE.DEPTH", "18"])
    model = build_model(cfg)
    assert type(model).__name__ == "ThreeC" and model.memory.mode == "chd"
    assert cfg.CLUSTER.NAME == "HDC" and cfg.CLUSTER.WARMUP_NAME == "DBSCAN"


def test_tiny_training_run_dbscan_warmup_then_hdc(tiny_root, tmp_path):
    # epoch 1 clusters with DBSCAN, epoch 2 with HDC; the backbone runs in chunks of 8 (gradient
    # accumulation), so the camera ids also reach batch_losses through the trainer's batch_keys path
    from unreidusl.engine import DefaultTrainer, default_setup

    cfg = setup_cfg("", tiny_opts(tiny_root, tmp_path, **{
        "MODEL.META_ARCHITECTURE": "ThreeC", "MODEL.MEMORY.UPDATE": "chd",
        "MODEL.LOSSES.NAME": "['CIEWeightedCrossEntropy']", "CLUSTER.NAME": "HDC", "CLUSTER.NUM_CLUSTERS": 8,
        "CLUSTER.WARMUP_EPOCHS": 1, "CLUSTER.K1_INCLUDES_SELF": False, "SOLVER.FORWARD_BATCH_SIZE": 8,
        "SOLVER.ITERS_PER_EPOCH": 1, "TEST.EVAL_PERIOD": 0, "CLUSTER.SIZE_HISTOGRAM": False}))
    default_setup(cfg)
    trainer = DefaultTrainer(cfg)
    trainer.train()
    log = (tmp_path / "log.txt").read_text()
    assert "JaccardDistance + DBSCAN" in log and "JaccardDistance + HDC" in log
    assert trainer.model.cluster_camera_entropy.numel() == trainer.model.memory.num_classes > 0
