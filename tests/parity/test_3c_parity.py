"""3C: the paper configs compute what the released code (stone5265/3C-reid) computed; the _fixed
config switches our fixes back on. Expected values are worked out by hand in the comments."""
import math
import os

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from unreidusl.cluster import build_clusterer, build_distance
from unreidusl.cluster.hdc import anchor_distances
from unreidusl.engine import setup_cfg
from unreidusl.modeling import build_model
from unreidusl.modeling.memory import build_memory

from helpers import ROOT, dense_distance, flatten_cfg

PAPER = ["configs/3C/market1501.yml", "configs/3C/msmt17.yml", "configs/3C/veri776.yml"]
FIXED = "configs/3C/market1501_fixed.yml"
SYNTHETIC = "configs/Synthetic/3c.yml"


def _cfg(path, *opts):
    return setup_cfg(os.path.join(ROOT, path), ["MODEL.DEVICE", "cpu", *opts])


def test_hdc_anchor_distance_is_the_released_complex_square():
    # z_d(v) = e^{i·α·π·v_d}/√2 with α = 1.9; t = 1/(2α) puts a coordinate offset of ±t at a phase of ±π/2.
    # x = (0, 0) against c0 = (t, −t) and c1 = (t, t):
    #   released code |Σ_d (z_d(x) − z_d(c))²|: (1 − i)²/2 = −i and (1 + i)²/2 = +i, so
    #     c0: |−i + i| = 0 (the opposite offsets cancel), c1: |−i − i| = 2
    #   paper Σ_d 1 − cos(απ(x_d − c_d)): (1 − cos(π/2)) + (1 − cos(−π/2)) = 2 for both
    t = 1.0 / (2 * 1.9)
    x = torch.zeros(1, 2)
    c = torch.tensor([[t, -t], [t, t]])
    paper, fixed = _cfg(PAPER[0]), _cfg(FIXED)
    assert paper.CLUSTER.HDC.EULER_ALPHA == fixed.CLUSTER.HDC.EULER_ALPHA == pytest.approx(1.9)
    d = anchor_distances(x, c, paper.CLUSTER.HDC.DISTANCE, paper.CLUSTER.HDC.EULER_ALPHA)
    assert d.tolist()[0] == pytest.approx([0.0, 2.0], abs=1e-5)
    d = anchor_distances(x, c, fixed.CLUSTER.HDC.DISTANCE, fixed.CLUSTER.HDC.EULER_ALPHA)
    assert d.tolist()[0] == pytest.approx([2.0, 2.0], abs=1e-5)
    # the HDC clusterer built from each config runs with that distance
    assert build_clusterer(paper).options["distance"] == "euler_complex"
    assert build_clusterer(fixed).options["distance"] == "euler"


def test_chd_update_gives_a_camera_singleton_confidence_two():
    # One cluster, proxy m = e1, μ (weight of the old proxy) = 0.1. Batch: e3 alone from camera 0;
    # e1, e2 from camera 1. Hardness d = 1 − <x, m>: e3 → 1, e1 → 0, e2 → 1.
    # Camera 1's centre is (e1 + e2)/√2: s(e2) = 1 + 1/√2,
    #   CHD(e2) = s·d/(s + d) = (1 + 1/√2)/(2 + 1/√2) = 0.6306.
    # released code ("max"): e3 is its own camera centre, s = 2, CHD = 2·1/(2 + 1) = 2/3 > 0.6306 → e3 updates m.
    # ours ("cluster"): s(e3) = 1 + cos(e3, (e1 + e2 + e3)/√3) = 1 + 1/√3, CHD = (1 + 1/√3)/(2 + 1/√3) = 0.6120
    #   < 0.6306 → e2 updates m.
    # update: m ← normalize(0.1·m + 0.9·x)
    x = torch.eye(3)[[2, 0, 1]]
    targets, camids = torch.tensor([0, 0, 0]), torch.tensor([0, 1, 1])
    chd_e2 = (1 + 1 / math.sqrt(2)) / (2 + 1 / math.sqrt(2))
    assert 2 / 3 > chd_e2 > (1 + 1 / math.sqrt(3)) / (2 + 1 / math.sqrt(3))
    results = {}
    for name, path in (("paper", PAPER[0]), ("fixed", FIXED)):
        cfg = _cfg(path)
        assert cfg.MODEL.MEMORY.OLD_WEIGHT == pytest.approx(0.1)
        memory = build_memory(cfg, 3)
        memory.reset(torch.tensor([[1.0, 0.0, 0.0]]))
        memory.update(x, targets, camids)
        results[name] = memory.features[0]
    assert torch.allclose(results["paper"], F.normalize(torch.tensor([0.1, 0.0, 0.9]), dim=0), atol=1e-6)
    assert torch.allclose(results["fixed"], F.normalize(torch.tensor([0.1, 0.9, 0.0]), dim=0), atol=1e-6)


def test_jaccard_forward_neighbourhood_is_self_plus_k1():
    # Points a = 0, b = 1, c = 3 on a line, k1 = 1, k2 = 1 (no query expansion), d = squared distance.
    # 3C (self + k1 = 2 forward neighbours): a → (a, b), b → (b, a), c → (c, b). R(a) = R(b) = {a, b}
    # (mutual), R(c) = {c} (c is not among b's first two); the half sets (round(1/2) + 1 = 1 column) are
    # the samples themselves, so the expansion adds nothing.
    # V_a = softmax(−(0, 1)) on (a, b) = (1, e^−1)/(1 + e^−1), V_b = (e^−1, 1)/(1 + e^−1), V_c = one-hot(c).
    # m_ab = Σ min = 2e^−1/(1 + e^−1) = 2/(e + 1);
    # D_ab = 1 − m/(2 − m) = 1 − (2/(e+1))/(2e/(e+1)) = 1 − 1/e.
    # D_ac = D_bc = 1 (no common support).
    # Cluster Contrast (k1 columns with self): every forward set is {self}, so every off-diagonal D is 1.
    x = np.array([[0.0], [1.0], [3.0]], dtype=np.float32)
    small = ("CLUSTER.K1", "1", "CLUSTER.K2", "1")
    ab = 1 - 1 / math.e
    for path in PAPER + [FIXED]:
        d = dense_distance(build_distance(_cfg(path, *small))(x))
        assert d == pytest.approx(np.array([[0, ab, 1], [ab, 0, 1], [1, 1, 0]]), abs=1e-6), path
    d = dense_distance(build_distance(_cfg(PAPER[0], *small, "CLUSTER.K1_INCLUDES_SELF", "True"))(x))
    assert d == pytest.approx(1 - np.eye(3), abs=1e-6)


@pytest.mark.parametrize("path", PAPER)
def test_paper_configs_select_the_released_code(path):
    cfg = _cfg(path, "MODEL.BACKBONE.PRETRAIN", "False", "MODEL.BACKBONE.DEPTH", "18")
    assert cfg.CLUSTER.NAME == "HDC" and cfg.CLUSTER.HDC.DISTANCE == "euler_complex"
    assert cfg.MODEL.MEMORY.UPDATE == "chd" and cfg.MODEL.MEMORY.CHD_SINGLETON == "max"
    assert cfg.CLUSTER.K1_INCLUDES_SELF is False
    assert build_distance(cfg).search_k == cfg.CLUSTER.K1 + 1
    torch.manual_seed(0)
    assert build_model(cfg).memory.chd_singleton == "max"


def test_fixed_config_selects_ours_and_changes_nothing_else():
    paper, fixed = flatten_cfg(_cfg(PAPER[0])), flatten_cfg(_cfg(FIXED))
    assert fixed["CLUSTER.HDC.DISTANCE"] == "euler" and fixed["MODEL.MEMORY.CHD_SINGLETON"] == "cluster"
    assert fixed["CLUSTER.K1_INCLUDES_SELF"] is False        # self + k1 is the original convention: kept
    changed = {k for k in paper if paper[k] != fixed[k]}
    assert changed == {"CLUSTER.HDC.DISTANCE", "MODEL.MEMORY.CHD_SINGLETON", "OUTPUT_DIR"}


def test_synthetic_config_keeps_what_it_computed():
    # the README's method-comparison numbers were trained with these
    cfg = _cfg(SYNTHETIC)
    assert cfg.CLUSTER.HDC.DISTANCE == "euler" and cfg.MODEL.MEMORY.CHD_SINGLETON == "cluster"
    assert cfg.CLUSTER.K1_INCLUDES_SELF is False
