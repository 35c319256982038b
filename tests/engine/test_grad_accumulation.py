"""SOLVER.FORWARD_BATCH_SIZE: the accumulated gradient equals the whole batch's (chunk-wise backbone BN)."""
import copy

import numpy as np
import pytest
import torch

from unreidusl.engine import setup_cfg
from unreidusl.engine.train_loop import SimpleTrainer
from unreidusl.modeling import build_model
from unreidusl.utils.events import EventStorage
from unreidusl.cluster import ClusterResult


def make(arch):
    cfg = setup_cfg("", ["MODEL.META_ARCHITECTURE", arch, "MODEL.BACKBONE.DEPTH", "18",
                         "MODEL.BACKBONE.LAST_STRIDE", "2", "MODEL.LOSSES.ID_K", "2"])
    torch.manual_seed(0)
    model = build_model(cfg).train()
    dim = 512
    model.reset_pseudo_labels(ClusterResult(np.repeat(np.arange(4), 4), features=torch.randn(16, dim)))
    return model


def reference_grads(model, images, targets, size):
    """One big batch: every chunk's backbone with its own graph, the loss on all of them."""
    parts = [model.per_sample(c) for c in images.split(size)]
    full = {k: torch.cat([p[k] for p in parts]) for k in parts[0]}
    losses = model.batch_losses(full, targets)
    sum(losses.values()).backward()
    return losses


@pytest.mark.parametrize("arch", ["ClusterContrast", "MTCluster"])
def test_accumulated_gradient_equals_whole_batch(arch):
    model = make(arch)
    twin = copy.deepcopy(model)
    torch.manual_seed(1)
    images = torch.randn(8, 3, 64, 32)
    targets = torch.tensor([0, 0, 1, 1, 2, 2, 3, 3])

    ref_losses = reference_grads(twin, images, targets, size=4)

    trainer = SimpleTrainer(model, torch.optim.SGD(model.parameters(), lr=0.0))
    trainer.storage = EventStorage()
    trainer.forward_batch_size = 4
    losses = trainer._forward_backward({"images": images, "targets": targets})

    for k in ref_losses:
        assert losses[k].item() == pytest.approx(ref_losses[k].item(), rel=1e-5, abs=1e-6)
    checked = 0
    for (name, p), q in zip(model.named_parameters(), twin.parameters()):
        if q.grad is None:
            assert p.grad is None or not p.grad.abs().any(), name
            continue
        assert torch.allclose(p.grad, q.grad, rtol=1e-4, atol=1e-6), name
        checked += 1
    assert checked > 10
    for b1, b2 in zip(model.buffers(), twin.buffers()):  # BN statistics updated once per chunk
        assert torch.allclose(b1.float(), b2.float(), atol=1e-6)
