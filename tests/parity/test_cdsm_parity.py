"""CDSM: the paper configs compute what the released code (colinzhaoxp/CDSM, CMhybrid_v5) computed;
the _fixed config switches our fixes back on. Expected values are worked out by hand in the comments."""
import math
import os

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from unreidusl.cluster.reliability import label_iou, training_list_gate
from unreidusl.engine import setup_cfg
from unreidusl.modeling import build_model
from unreidusl.modeling.memory import build_memory
from unreidusl.cluster import ClusterResult

from helpers import ROOT, flatten_cfg

PAPER = ["configs/CDSM/market1501.yml", "configs/CDSM/msmt17.yml", "configs/CDSM/dukemtmc.yml"]
FIXED = "configs/CDSM/market1501_fixed.yml"
SYNTHETIC = "configs/Synthetic/cdsm.yml"
SMALL = ("MODEL.BACKBONE.PRETRAIN", "False", "MODEL.BACKBONE.DEPTH", "18")


def _cfg(path, *opts):
    return setup_cfg(os.path.join(ROOT, path), ["MODEL.DEVICE", "cpu", *opts])


def test_memory_update_is_not_renormalised():
    # K = 1 cluster, M = 4 marginal proxies; rows: 0 central, 1..4 marginal slots, all e1 = (1, 0).
    # One batch sample x = e2 = (0, 1): it is selected (the first pick is unconditional) and fills slot 1;
    # as the only sample it is also the medoid, which updates the central proxy. μ = 0.05 (old weight):
    #   0.05·(1, 0) + 0.95·(0, 1) = (0.05, 0.95), of norm √(0.0025 + 0.9025) = √0.905 = 0.951315.
    # released code: left as is; ours: (0.05, 0.95)/√0.905 = (0.052559, 0.998618). Slots 2..4 keep e1.
    rows = {}
    for name, path in (("paper", PAPER[0]), ("fixed", FIXED)):
        cfg = _cfg(path)
        assert cfg.MODEL.MEMORY.OLD_WEIGHT == pytest.approx(0.05) and cfg.MODEL.MEMORY.NUM_MARGINAL == 4
        memory = build_memory(cfg, 2)
        memory.reset(torch.tensor([[1.0, 0.0]]))
        memory.update(torch.tensor([[0.0, 1.0]]), torch.tensor([0]))
        rows[name] = memory.features
        assert torch.equal(memory.features[2:], torch.tensor([[1.0, 0.0]] * 3))
    assert rows["paper"][:2].tolist() == [pytest.approx([0.05, 0.95])] * 2
    assert rows["paper"][0].norm().item() == pytest.approx(math.sqrt(0.905))
    unit = [0.05 / math.sqrt(0.905), 0.95 / math.sqrt(0.905)]
    assert rows["fixed"][:2].tolist() == [pytest.approx(unit)] * 2


# Full training list of 8 images: 0 is an outlier, 1..7 form cluster 0. At eps − gap (and, in this test,
# also at eps + gap) image 2 splits off as a singleton: W = 2 is the one unreliable image.
LABELS = np.array([-1, 0, 0, 0, 0, 0, 0, 0])
SPLIT = np.array([-1, 0, -1, 0, 0, 0, 0, 0])


def test_reliability_gate_reads_the_scores_at_the_outlier_free_position():
    # R(i) = |S(i) ∩ S'(i)| / |S(i) ∪ S'(i)| with outliers as singletons:
    #   image 0: {0} vs {0} → 1;  image 2: {1..7} vs {2} → 1/7;  others: {1..7} vs {1,3..7} → 6/7.
    # Threshold of cluster 0 (ratio 0.2): 0.2 · max = 0.2 · 6/7 = 6/35 = 0.1714 > 1/7 = 0.1429.
    # The training list (outliers dropped) is images 1..7 at positions p = 0..6.
    #   ours: position p is image p + 1 on its own scores → only image 2 (p = 1) fails.
    #   released code: position p reads the full-list arrays at p, i.e. image p's scores (against its
    #   own cluster's threshold): p = 0 reads the outlier (1), p = 1 (image 2) reads image 1 (6/7) and
    #   passes, p = 2 (image 3, reliable) reads image 2 (1/7) and fails.
    r = label_iou(LABELS, SPLIT)
    assert r.tolist() == pytest.approx([1, 6 / 7, 1 / 7, 6 / 7, 6 / 7, 6 / 7, 6 / 7, 6 / 7])
    gates = {}
    for name, path in (("paper", PAPER[0]), ("fixed", FIXED)):
        cfg = _cfg(path, *SMALL)
        assert cfg.MODEL.MEMORY.RELIABILITY_RATIO == pytest.approx(0.2)
        torch.manual_seed(0)
        model = build_model(cfg)
        features = F.normalize(torch.randn(8, model.student.feat_dim), dim=1)
        model.reset_pseudo_labels(ClusterResult(LABELS, features=features, labels_tight=SPLIT, labels_loose=SPLIT))
        gates[name] = model.reliable.tolist()
    assert gates["paper"] == [True, True, False, True, True, True, True]
    assert gates["fixed"] == [True, False, True, True, True, True, True]
    # with the outlier at the end of the list nothing is shifted: both read image p at position p
    last = np.roll(LABELS, -1)
    split = np.roll(SPLIT, -1)
    scores = (label_iou(last, split),) * 2
    assert training_list_gate(last, scores, 0.2, "reference").tolist() == \
        training_list_gate(last, scores, 0.2, "aligned").tolist() == [True, False, True, True, True, True, True]


@pytest.mark.parametrize("path", PAPER)
def test_paper_configs_select_the_released_code(path):
    cfg = _cfg(path, *SMALL)
    m = cfg.MODEL.MEMORY
    assert m.NAME == "DiversityMemory" and m.RELIABILITY_GATE is True
    assert m.RENORMALIZE is False and m.RELIABILITY_INDEXING == "reference"
    torch.manual_seed(0)
    model = build_model(cfg)
    assert model.memory.renormalize is False and model.reliability_indexing == "reference"


def test_fixed_config_selects_ours_and_changes_nothing_else():
    paper, fixed = flatten_cfg(_cfg(PAPER[0])), flatten_cfg(_cfg(FIXED))
    assert fixed["MODEL.MEMORY.RENORMALIZE"] is True and fixed["MODEL.MEMORY.RELIABILITY_INDEXING"] == "aligned"
    changed = {k for k in paper if paper[k] != fixed[k]}
    assert changed == {"MODEL.MEMORY.RENORMALIZE", "MODEL.MEMORY.RELIABILITY_INDEXING", "OUTPUT_DIR"}


def test_synthetic_config_keeps_what_it_computed():
    # the README's method-comparison numbers were trained with these
    cfg = _cfg(SYNTHETIC)
    assert cfg.MODEL.MEMORY.RENORMALIZE is True and cfg.MODEL.MEMORY.RELIABILITY_INDEXING == "aligned"


def test_unknown_indexing_is_refused():
    with pytest.raises(ValueError, match="RELIABILITY_INDEXING"):
        build_model(_cfg(PAPER[0], *SMALL, "MODEL.MEMORY.RELIABILITY_INDEXING", "shifted"))
