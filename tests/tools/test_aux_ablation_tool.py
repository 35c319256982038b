"""tools/aux_ablation.py --features model: the first-epoch clustering of a video recipe in one command."""
import json
import os

import pytest
import torch

from unreidusl.engine import DefaultTrainer, setup_cfg
from unreidusl.utils.checkpoint import load_checkpoint
from unreidusl.utils.env import seed_all

from helpers import ROOT, load_tool

aux_ablation = load_tool("aux_ablation")

CONFIG = os.path.join(ROOT, "configs", "Synthetic", "mtcluster_video.yml")


@pytest.mark.slow
def test_initial_model_table_on_the_tiny_video_world(tmp_path):
    opts = ["DATASETS.ROOT", str(tmp_path / "data"), "DATASETS.SYNTHETIC.PRESET", "tiny",
            "DATALOADER.NUM_WORKERS", "0", "CLUSTER.K1", "4", "CLUSTER.K2", "2",
            "LOG.TENSORBOARD", "False", "OUTPUT_DIR", str(tmp_path / "run")]
    out = tmp_path / "table"
    assert aux_ablation.main(["--config-file", CONFIG, "--features", "model", "--eps", "0.6",
                              "--out", str(out)] + opts) == 0
    table = (out / "ablation.md").read_text()
    assert "model (initial model, SEED 1; first-epoch clips)" in table.splitlines()[0]
    for row in ("| base ", "| +SCP ", "| +STS ", "| +TOC ", "| +TOC+SCP+STS "):
        assert row in table
    result = json.loads((out / "ablation.json").read_text())
    assert result["stats"]["cannot_link_pairs"] > 0            # the crowded video world has TOC pairs
    assert {r["eps_mode"] for r in result["rows"]} == {"adaptive", "fixed 0.6"}

    # the saved initial model is the one a training run with the same config starts from
    cfg = setup_cfg(CONFIG, opts)
    seed_all(cfg.SEED)                                          # as default_setup
    trainer = DefaultTrainer(cfg)
    saved = load_checkpoint(str(out / "model_init.pth"))["model"]
    for name, value in trainer.model.state_dict().items():
        assert torch.equal(value, saved[name]), name
