import numpy as np
import pytest
import torch

from unreidusl.engine import DefaultTrainer, default_setup, setup_cfg
from unreidusl.engine.selection import label_stability
from unreidusl.utils.checkpoint import load_checkpoint

from helpers import tiny_opts


def test_label_stability():
    a = np.array([0, 0, 1, 1, -1])
    assert label_stability(a, np.array([5, 5, 3, 3, -1])) == pytest.approx(1.0)
    assert label_stability(a, np.array([0, 1, 0, 1, -1])) < 0.5


@pytest.mark.slow
@pytest.mark.parametrize("criterion", ["cluster_stability", "test_mAP"])
def test_best_checkpoint_and_reference_optimizer(tiny_root, tmp_path, criterion, monkeypatch):
    from unreidusl.engine.selection import ResetOptimizerEachEpoch

    cleared = []
    original = ResetOptimizerEachEpoch.before_epoch

    def spy(self):
        assert self.trainer.optimizer.state or self.trainer.epoch == 0  # moments exist after epoch 0
        original(self)
        cleared.append(len(self.trainer.optimizer.state))

    monkeypatch.setattr(ResetOptimizerEachEpoch, "before_epoch", spy)
    cfg = setup_cfg("", tiny_opts(tiny_root, tmp_path / criterion, **{
        "SOLVER.SELECT_BEST": criterion, "SOLVER.MAX_EPOCHS": 3, "TEST.EVAL_PERIOD": 1,
        "SOLVER.RESET_OPTIMIZER_EACH_EPOCH": True, "SOLVER.SCHED": "ConstantLR"}))
    default_setup(cfg)
    trainer = DefaultTrainer(cfg)
    trainer.train()
    best = load_checkpoint(str(tmp_path / criterion / "model_best.pth"))
    assert best["criterion"] == criterion and 1 <= best["epoch"] <= 3
    if criterion == "test_mAP":
        maps = [v for _, v in trainer.storage.history("test/mAP")]
        assert best["score"] == pytest.approx(max(maps))
    else:
        assert len(trainer.storage.history("cluster/stability")) == 2
    assert cleared == [0, 0, 0]
    assert trainer.optimizer.param_groups[0]["lr"] == pytest.approx(cfg.SOLVER.BASE_LR)
    assert set(best["model"]) == set(trainer.model.state_dict())
    assert isinstance(best["model"][next(iter(best["model"]))], torch.Tensor)


def test_stability_after_resume_compares_with_the_restored_labels(tmp_path):
    from types import SimpleNamespace

    from unreidusl.engine.selection import BestCheckpointer
    from unreidusl.utils.events import EventStorage

    restored = np.array([0, 0, 1, 1, -1])       # the resumed run's last pseudo-labels
    source = {"labels": restored}
    hook = BestCheckpointer("cluster_stability", str(tmp_path / "best.pth"), lambda: source["labels"])
    hook.load_state_dict({"best": 0.5})
    hook.trainer = SimpleNamespace(epoch=3, storage=EventStorage(), model=torch.nn.Linear(1, 1))
    hook.before_train()
    # PseudoLabelHook (before this hook) re-clusters at the start of the first resumed epoch
    source["labels"] = np.array([1, 1, 0, 0, -1])
    hook.before_epoch()
    assert hook.trainer.storage.latest()["cluster/stability"][0] == pytest.approx(1.0)
    hook.before_epoch()                         # no new clustering (CLUSTER.PERIOD > 1): no new score
    assert len(hook.trainer.storage.history("cluster/stability")) == 1
    assert load_checkpoint(str(tmp_path / "best.pth"))["epoch"] == 3 and hook.best == pytest.approx(1.0)


def test_unknown_criterion(tmp_path):
    from unreidusl.engine.selection import BestCheckpointer

    with pytest.raises(ValueError, match="SOLVER.SELECT_BEST"):
        BestCheckpointer("best_guess", str(tmp_path / "b.pth"), lambda: None)
