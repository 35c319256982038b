import os

import pytest

from unreidusl.config import ConfigError, get_cfg
from unreidusl.engine import setup_cfg

from helpers import ROOT


def write(path, text):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return str(path)


def test_defaults_are_independent_copies():
    a, b = get_cfg(), get_cfg()
    a.SOLVER.BASE_LR = 1.0
    assert b.SOLVER.BASE_LR == pytest.approx(3.5e-4)


def test_command_line_overrides_and_type_coercion():
    cfg = setup_cfg("", ["SOLVER.BASE_LR", "1", "SOLVER.STEPS", "[3, 7]", "MODEL.LOSSES.NAME",
                         "['ClusterContrastLoss']", "TEST.EVAL_ONLY", "True"])
    assert cfg.SOLVER.BASE_LR == 1.0 and isinstance(cfg.SOLVER.BASE_LR, float)
    assert cfg.SOLVER.STEPS == [3, 7]
    assert cfg.TEST.EVAL_ONLY is True
    assert cfg.is_frozen()


def test_base_inheritance_relative_paths_and_override_order(tmp_path):
    write(tmp_path / "base" / "root.yml", "SOLVER:\n  BASE_LR: 0.1\n  MAX_EPOCHS: 7\nSEED: 5\n")
    write(tmp_path / "base" / "mid.yml", "_BASE_: root.yml\nSOLVER:\n  MAX_EPOCHS: 9\n")
    child = write(tmp_path / "exp" / "child.yml", "_BASE_: ../base/mid.yml\nSEED: 11\n")
    cfg = setup_cfg(child, ["SOLVER.BASE_LR", "0.5"])
    assert cfg.SOLVER.MAX_EPOCHS == 9       # mid overrides root
    assert cfg.SEED == 11                   # child overrides root
    assert cfg.SOLVER.BASE_LR == 0.5        # command line wins over files


def test_circular_base_is_reported(tmp_path):
    a = write(tmp_path / "a.yml", "_BASE_: b.yml\n")
    write(tmp_path / "b.yml", "_BASE_: a.yml\n")
    with pytest.raises(ConfigError, match="Circular"):
        setup_cfg(a)


def test_unknown_key_in_file_names_key_file_and_closest_keys(tmp_path):
    f = write(tmp_path / "bad.yml", "SOLVER:\n  BASE_LRR: 0.1\n")
    with pytest.raises(ConfigError) as e:
        setup_cfg(f)
    msg = str(e.value)
    assert "SOLVER.BASE_LRR" in msg and "bad.yml" in msg and "SOLVER.BASE_LR" in msg


def test_unknown_key_on_command_line_suggests_by_leaf_name():
    with pytest.raises(ConfigError) as e:
        setup_cfg("", ["EPS", "0.5"])
    assert "CLUSTER.EPS" in str(e.value)


def test_wrong_type_names_the_key():
    with pytest.raises(ConfigError, match="SOLVER.MAX_EPOCHS"):
        setup_cfg("", ["SOLVER.MAX_EPOCHS", "many"])


def test_odd_number_of_overrides():
    with pytest.raises(ConfigError, match="KEY VALUE"):
        setup_cfg("", ["SOLVER.BASE_LR"])


def test_dumped_config_round_trips(tmp_path):
    cfg = setup_cfg("", ["SOLVER.MAX_EPOCHS", "3", "INPUT.SIZE_TRAIN", "[64, 32]"])
    path = write(tmp_path / "dump.yml", cfg.dump())
    again = setup_cfg(path)
    assert again == cfg


def test_shipped_configs_load():
    root = os.path.join(ROOT, "configs")
    files = [os.path.join(d, f) for d, _, fs in os.walk(root) for f in fs if f.endswith(".yml")]
    assert files
    for f in files:
        setup_cfg(f)
