"""A NaN/Inf loss stops training with the iteration, the loss terms and the last good checkpoint, or
(SOLVER.SKIP_NONFINITE_LOSS) the step is skipped without a trace, up to a limit."""
import math
from types import SimpleNamespace

import pytest
import torch
from torch import nn

from unreidusl.engine.nonfinite import NonFiniteLossGuard
from unreidusl.modeling.losses import LOSS_REGISTRY
from unreidusl.utils.checkpoint import load_checkpoint

from helpers import main, tiny_opts


class _Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc, self.bn = nn.Linear(3, 2), nn.BatchNorm1d(2)
        self.register_buffer("memory", torch.ones(4, 2))

    def forward(self, x):
        out = self.bn(self.fc(x))
        self.memory = torch.cat([self.memory, out.detach()])  # replaced, not updated in place
        return out


def _trainer(model):
    return SimpleNamespace(model=model, optimizer=torch.optim.SGD(model.parameters(), lr=0.1),
                           epoch=1, inner_iter=4, iter=12)


def _step(guard, trainer, loss_value):
    guard.before_forward(trainer.model)
    out = trainer.model(torch.randn(5, 3))
    loss = out.sum() * loss_value
    loss.backward()
    return guard.check(trainer, {"ce": loss, "tri": torch.tensor(0.5)})


def test_stop_names_iteration_terms_and_checkpoint():
    t = _trainer(_Net())
    guard = NonFiniteLossGuard(0, lambda: "/out/model_0002.pth")
    assert _step(guard, t, 1.0)
    with pytest.raises(FloatingPointError) as e:
        _step(guard, t, float("nan"))
    msg = str(e.value)
    assert "epoch 2 iteration 5 (global iteration 12)" in msg and "'tri': 0.5" in msg and "'ce': nan" in msg
    assert "/out/model_0002.pth" in msg and "SOLVER.SKIP_NONFINITE_LOSS" in msg
    with pytest.raises(FloatingPointError, match="no checkpoint has been written yet"):
        _step(NonFiniteLossGuard(), t, float("inf"))


def test_skip_restores_buffers_drops_gradients_and_stops_after_the_limit():
    torch.manual_seed(0)
    t = _trainer(_Net())
    guard = NonFiniteLossGuard(2)
    before = {k: v.clone() for k, v in t.model.named_buffers()}
    assert not _step(guard, t, float("nan"))
    after = dict(t.model.named_buffers())
    assert after.keys() == before.keys()
    assert all(torch.equal(before[k], after[k]) for k in before)  # BN statistics and the memory
    assert all(p.grad is None for p in t.model.parameters()) and guard.consecutive == 1
    assert _step(guard, t, 1.0) and guard.consecutive == 0        # a finite step resets the count
    assert not _step(guard, t, float("inf")) and not _step(guard, t, float("nan"))
    with pytest.raises(FloatingPointError, match="after 2 consecutive skipped steps"):
        _step(guard, t, float("nan"))
    with pytest.raises(ValueError, match="MAX_NONFINITE_SKIPS"):
        NonFiniteLossGuard(-1)


class NaNAtIterations(nn.Module):
    """Test loss: 0 × logits, except NaN at the listed calls (one call per training step)."""
    at = ()

    def __init__(self, cfg):
        super().__init__()
        self.calls = 0

    def forward(self, outputs, targets):
        self.calls += 1
        scale = math.nan if self.calls - 1 in self.at else 0.0
        return outputs["logits"].sum() * scale


LOSS_REGISTRY.register(NaNAtIterations)


def _opts(root, out, **extra):
    return tiny_opts(root, out, **{"SOLVER.ITERS_PER_EPOCH": 2, "TEST.EVAL_PERIOD": 0,
                                   "CLUSTER.SIZE_HISTOGRAM": False,
                                   "MODEL.LOSSES.NAME": "['ClusterContrastLoss','NaNAtIterations']", **extra})


@pytest.mark.slow
def test_training_stops_naming_the_last_checkpoint(tiny_root, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(NaNAtIterations, "at", (3,))                 # epoch 2, iteration 2
    assert main(_opts(tiny_root, tmp_path)) == 1
    out = capsys.readouterr().out
    assert "FloatingPointError" in out and "epoch 2 iteration 2 (global iteration 3)" in out
    assert f"the last good checkpoint is {tmp_path / 'model_0001.pth'}" in out and "NaNAtIterations" in out


@pytest.mark.slow
def test_training_skips_a_nan_step_when_asked(tiny_root, tmp_path, monkeypatch, caplog):
    monkeypatch.setattr(NaNAtIterations, "at", (1, 2))               # two in a row: the limit
    opts = _opts(tiny_root, tmp_path, **{"SOLVER.SKIP_NONFINITE_LOSS": True, "SOLVER.MAX_NONFINITE_SKIPS": 2})
    assert main(opts) == 0
    final = load_checkpoint(str(tmp_path / "model_final.pth"))
    assert final["iter"] == 4 and final["nonfinite_skips"] == 0
    assert all(torch.isfinite(v).all() for v in final["model"].values() if v.is_floating_point())
    assert "(2 of at most 2 in a row)" in (tmp_path / "log.txt").read_text()
