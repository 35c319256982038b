"""End-to-end training on the tiny synthetic world, outputs, and exact resume."""
import json
import os

import pytest
import torch

from unreidusl.engine import HOOK_REGISTRY, DefaultTrainer, HookBase, default_setup, setup_cfg
from unreidusl.utils.checkpoint import load_checkpoint

from helpers import main, tiny_opts


class SimulatedCrash(RuntimeError):
    pass


@HOOK_REGISTRY.register()
class CrashAfterFirstEpoch(HookBase):
    """Test hook: dies right after the first epoch's checkpoint has been written."""

    def __init__(self, cfg, trainer):
        pass

    def after_epoch(self):
        if self.trainer.epoch == 0:
            raise SimulatedCrash("simulated crash")


def run(opts, resume=False):
    cfg = setup_cfg("", opts)
    default_setup(cfg, resume=resume)
    trainer = DefaultTrainer(cfg)
    trainer.resume_or_load(resume=resume)
    trainer.train()
    return trainer


def assert_same_state(a, b):
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k


@pytest.mark.slow
def test_train_writes_outputs_and_resume_is_exact(tiny_root, tmp_path):
    common = {"DETERMINISTIC": True, "TEST.EVAL_PERIOD": 1}
    full = run(tiny_opts(tiny_root, tmp_path / "full", **common))
    out = tmp_path / "full"
    for name in ("config.yaml", "log.txt", "metrics.json", "model_0001.pth", "model_final.pth"):
        assert (out / name).is_file(), name
    records = [json.loads(line) for line in (out / "metrics.json").read_text().splitlines()]
    assert any("cluster/num_clusters" in r for r in records)
    assert any("test/mAP" in r for r in records)
    assert all(r["total_loss"] == r["total_loss"] for r in records if "total_loss" in r)  # no NaN

    crash_opts = tiny_opts(tiny_root, tmp_path / "crash", HOOKS="['CrashAfterFirstEpoch']", **common)
    with pytest.raises(SimulatedCrash):
        run(crash_opts)
    assert (tmp_path / "crash" / "model_0001.pth").is_file()
    assert not (tmp_path / "crash" / "model_final.pth").exists()
    resumed = run(tiny_opts(tiny_root, tmp_path / "crash", **common), resume=True)
    assert resumed.start_epoch == 1

    a = load_checkpoint(str(out / "model_final.pth"))
    b = load_checkpoint(str(tmp_path / "crash" / "model_final.pth"))
    assert a["epoch"] == b["epoch"] == 2 and a["iter"] == b["iter"] == 4
    assert_same_state(a["model"], b["model"])
    assert torch.equal(a["hooks"]["PseudoLabelHook"]["labels"], b["hooks"]["PseudoLabelHook"]["labels"])
    sa, sb = a["optimizer"]["state"], b["optimizer"]["state"]
    assert sa.keys() == sb.keys()
    for k in sa:
        assert_same_state(sa[k], sb[k])
    assert a["scheduler"] == b["scheduler"]
    assert json.loads(a["hooks"]["EvalHook"]["history"]) == json.loads(b["hooks"]["EvalHook"]["history"])
    del full, resumed


def test_eval_only_with_weights(tiny_root, tmp_path, capsys):
    weights = tmp_path / "w.pth"
    opts = tiny_opts(tiny_root, tmp_path / "ev")
    cfg = setup_cfg("", opts)
    default_setup(cfg)
    torch.save({"model": DefaultTrainer(cfg).model.state_dict()}, weights)
    rc = main(["--eval-only"] + opts + ["MODEL.WEIGHTS", str(weights)])
    assert rc == 0
    text = capsys.readouterr().out
    assert "mAP" in text and "Rank-1" in text and "Loaded model weights" in text
