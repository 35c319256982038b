"""AuxUSLReID's original keys are accepted with their meaning; dead keys warn."""
import logging

import pytest

from unreidusl.config import ConfigError, get_cfg
from unreidusl.config.compat import DEAD, RENAMED, TRANSLATED
from unreidusl.config.config import _flatten, _to_dict
from unreidusl.engine import setup_cfg

from helpers import ROOT


def test_every_translation_targets_an_existing_key():
    keys = set(_flatten(_to_dict(get_cfg())))
    assert set(RENAMED.values()) <= keys
    for key, fn in TRANSLATED.items():
        sample = {"CHECKPOING.SAVE_STEP": [-2], "RESUME": "x.pth"}.get(key)
        if sample is None:
            continue
        assert set(fn(sample)) <= keys
    assert not (set(RENAMED) | set(TRANSLATED) | set(DEAD)) & keys  # no shadowing of our own keys


def test_original_yaml_style_keys(tmp_path):
    f = tmp_path / "orig.yml"
    f.write_text(
        "MODE: usl_MTCluster_base\n"
        "MODEL:\n  ARCH: resnet50bnn\n"
        "DATASETS:\n  TARGET: duke\n  DIR: /data\n"
        "INPUT:\n  DO_FLIP: True\n  PADDING: 7\n  REA:\n    MEAN: [0.1, 0.2, 0.3]\n"
        "DATALOADER:\n  TRAIN_BATCH_SIZE: 32\n  NUM_INSTANCE: 8\n  ITERS: 123\n"
        "OPTIM:\n  OPT: adam\n  LR: 0.001\n  SCHED: single_step\n  STEPS: [50]\n  EPOCHS: 50\n"
        "CHECKPOING:\n  SAVE_STEP: [-2]\n"
    )
    cfg = setup_cfg(str(f))
    assert cfg.MODEL.META_ARCHITECTURE == "MTCluster" and cfg.MODEL.BACKBONE.DEPTH == 50
    assert cfg.DATASETS.TRAIN == "DukeMTMCVideoReID" and cfg.DATASETS.ROOT == "/data"
    assert cfg.INPUT.PADDING.SIZE == 7 and cfg.INPUT.REA.VALUE == [0.1, 0.2, 0.3]
    assert cfg.SOLVER.IMS_PER_BATCH == 32 and cfg.DATALOADER.NUM_INSTANCES == 8
    assert cfg.SOLVER.ITERS_PER_EPOCH == 123 and cfg.SOLVER.BASE_LR == 0.001
    assert cfg.SOLVER.SCHED == "MultiStepLR" and cfg.SOLVER.STEPS == [50] and cfg.SOLVER.MAX_EPOCHS == 50
    assert cfg.TEST.EVAL_PERIOD == 2 and cfg.SOLVER.CHECKPOINT_PERIOD == 2


def test_dead_key_warns_and_is_ignored(caplog):
    with caplog.at_level(logging.WARNING):
        cfg = setup_cfg("", ["GPU_Device", "[0,1]", "OPTIM.WARMUP_ITERS", "10"])
    assert "GPU_Device" in caplog.text and "CUDA_VISIBLE_DEVICES" in caplog.text
    assert "OPTIM.WARMUP_ITERS" in caplog.text
    assert "GPU_Device" not in cfg


def test_unsupported_value_names_the_key():
    with pytest.raises(ConfigError, match="DATASETS.TARGET"):
        setup_cfg("", ["DATASETS.TARGET", "duke_track"])


@pytest.mark.parametrize("name", ["USL_MTCluster.yml", "USL_MTCluster_Duke.yml"])
def test_shipped_auxuslreid_configs_load_and_build(name):
    import os

    from unreidusl.modeling import build_model

    path = os.path.join(ROOT, "configs", name)
    cfg = setup_cfg(path, ["MODEL.BACKBONE.PRETRAIN", "False"])
    assert cfg.MODEL.META_ARCHITECTURE == "MTCluster" and cfg.DATALOADER.ITERS_CLUSTER_MULTIPLIER == 0.6
    assert cfg.MODEL.LOSSES.NAME[0] == "RestrictedLabelSmoothingCrossEntropy" and cfg.CLUSTER.ADAPTIVE
    model = build_model(cfg)
    assert model.student.feat_dim == 2048
