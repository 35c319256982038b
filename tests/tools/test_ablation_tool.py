"""tools/ablation_mtcluster.py: cumulative variants and the table it writes."""
import json
import os

import pytest

from unreidusl.engine import setup_cfg

from helpers import ROOT, load_tool

ablation = load_tool("ablation_mtcluster")

CONFIG = os.path.join(ROOT, "configs", "Synthetic", "mtcluster_video.yml")


def test_variants_are_cumulative_and_restore_config_values():
    cfg = setup_cfg(CONFIG)
    v = ablation.variant_overrides(cfg, ["baseline", "+WATL", "+DTI", "+SCP"])
    assert v["baseline"]["MODEL.LOSSES.ID_OPTION"] == 1 and v["baseline"]["DATALOADER.ITERS_CLUSTER_MULTIPLIER"] == -1
    assert v["+WATL"]["MODEL.LOSSES.ID_OPTION"] == 3 and v["+WATL"]["MODEL.LOSSES.TRI_OPTION"] == 2
    assert v["+DTI"]["DATALOADER.ITERS_CLUSTER_MULTIPLIER"] == cfg.DATALOADER.ITERS_CLUSTER_MULTIPLIER
    assert v["+SCP"]["CLUSTER.TOC.ENABLED"] and v["+SCP"]["TEST.STS.ENABLED"] and v["+SCP"]["TEST.SCP.ENABLED"]
    with pytest.raises(SystemExit, match="unknown variants"):
        ablation.variant_overrides(cfg, ["+MAGIC"])


@pytest.mark.slow
def test_two_variants_on_the_tiny_video_world(tmp_path):
    opts = ["DATASETS.ROOT", str(tmp_path / "data"), "DATASETS.SYNTHETIC.PRESET", "tiny",
            "DATALOADER.NUM_WORKERS", "0", "SOLVER.MAX_EPOCHS", "1", "SOLVER.ITERS_PER_EPOCH", "2",
            "SOLVER.IMS_PER_BATCH", "8", "MODEL.LOSSES.ID_K", "2", "TEST.EVAL_AT_START", "False",
            "LOG.TENSORBOARD", "False", "OUTPUT_DIR", str(tmp_path / "out")]
    assert ablation.main(["--config-file", CONFIG, "--variants", "baseline,+RLSCE"] + opts) == 0
    table = (tmp_path / "out" / "ablation.md").read_text()
    assert "baseline" in table and "+RLSCE" in table and "mAP" in table
    results = json.loads((tmp_path / "out" / "ablation.json").read_text())
    assert set(results) == {"baseline", "+RLSCE"}
    assert all(0 <= r["mAP"] <= 100 for r in results.values())
    assert (tmp_path / "out" / "baseline" / "model_final.pth").is_file()
