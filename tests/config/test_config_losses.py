"""MODEL.LOSSES.NAME means the same for every method: every config in configs/ builds a model whose
loss set is exactly the listed losses (or the method's default set when the list is empty), and one
training step calls every one of them."""
import glob
import os

import numpy as np
import pytest
import torch

from unreidusl.cluster import ClusterResult
from unreidusl.engine import setup_cfg
from unreidusl.modeling import build_model

from helpers import ROOT

CONFIGS = sorted(glob.glob(os.path.join(ROOT, "configs", "**", "*.yml"), recursive=True))
SMALL = ["MODEL.BACKBONE.DEPTH", "18", "MODEL.BACKBONE.PRETRAIN", "False", "MODEL.DEVICE", "cpu",
         "INPUT.SIZE_TRAIN", "[64,32]", "INPUT.SIZE_TEST", "[64,32]", "SOLVER.FORWARD_BATCH_SIZE", "0"]


def test_every_config_is_checked():
    assert len(CONFIGS) >= 30


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: os.path.relpath(p, os.path.join(ROOT, "configs")))
def test_listed_losses_are_the_models_losses_and_all_are_used(path):
    torch.manual_seed(0)
    cfg = setup_cfg(path, SMALL)
    model = build_model(cfg)
    names = list(cfg.MODEL.LOSSES.NAME) or list(model.default_losses)
    assert list(model.losses) == names
    if cfg.MODEL.LOSSES.WEIGHTS:
        assert [model.loss_weights[n] for n in names] == list(cfg.MODEL.LOSSES.WEIGHTS)
    calls = {}
    for name, module in model.losses.items():
        module.register_forward_hook(lambda *_, name=name: calls.__setitem__(name, calls.get(name, 0) + 1))
    n, per = 16, 4
    images = torch.randn(n, 3, 64, 32)
    labels = np.repeat(np.arange(n // per), per)
    model.eval()
    with torch.no_grad():
        features = model.cluster_extractor()({"images": images}).float()
    distance = np.where(labels[:, None] == labels[None], 0.1, 1.0).astype(np.float32)
    np.fill_diagonal(distance, 0.0)
    model.reset_pseudo_labels(ClusterResult(labels, features=features, distance=distance,
                                            camids=torch.arange(n) % 2))
    model.train()
    batch = {"images": images, "targets": torch.as_tensor(labels), "index": torch.arange(n),
             "camids": torch.arange(n) % 2}
    losses = model(batch)
    assert set(losses) == set(names)
    assert all(torch.isfinite(v) for v in losses.values())
    assert calls == {name: 1 for name in names}
