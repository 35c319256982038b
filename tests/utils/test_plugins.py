import os

import pytest

from unreidusl.cluster import CLUSTERER_REGISTRY
from unreidusl.config import ConfigError
from unreidusl.engine import DefaultTrainer, default_setup, setup_cfg
from unreidusl.modeling import LOSS_REGISTRY
from unreidusl.utils.env import import_plugin

from helpers import ROOT, tiny_opts

PLUGIN = os.path.join(ROOT, "tests", "plugins", "toy_plugin.py")


def test_plugin_registers_components_and_trains_with_them(tiny_root, tmp_path):
    opts = tiny_opts(tiny_root, tmp_path / "out", **{
        "PLUGINS": f"['{PLUGIN}']",
        "CLUSTER.NAME": "ConnectedComponents",
        "MODEL.LOSSES.NAME": "['ToySmoothLoss']",
        "TOY.SMOOTHING": 0.2,          # a key the plugin added
        "SOLVER.MAX_EPOCHS": 1,
    })
    cfg = setup_cfg("", opts)
    assert cfg.TOY.SMOOTHING == 0.2
    clusterer, loss = CLUSTERER_REGISTRY.get("ConnectedComponents"), LOSS_REGISTRY.get("ToySmoothLoss")
    clusterer.calls = loss.calls = 0
    default_setup(cfg)
    trainer = DefaultTrainer(cfg)
    trainer.train()
    assert clusterer.calls == 1
    assert loss.calls == cfg.SOLVER.ITERS_PER_EPOCH
    assert os.path.isfile(tmp_path / "out" / "model_final.pth")


def test_plugin_method_trains_and_gets_the_whole_cluster_result(tiny_root, tmp_path):
    opts = tiny_opts(tiny_root, tmp_path / "out", **{
        "PLUGINS": f"['{PLUGIN}']", "MODEL.META_ARCHITECTURE": "ToyCentroidClassifier",
        "SOLVER.MAX_EPOCHS": 1})
    cfg = setup_cfg("", opts)
    default_setup(cfg)
    trainer = DefaultTrainer(cfg)
    trainer.train()
    model = trainer.model
    # camids were declared, so PseudoLabelHook passed them (one per training sample, 0-based)
    assert model.seen_camids is not None
    assert model.seen_camids.tolist() == [s.camid for s in trainer.train_set.train]
    assert model.centroids.shape[0] > 1 and trainer.storage.latest()["toy_ce"][0] > 0
    # no per_sample / batch_losses split: chunked accumulation is refused up front
    cfg = setup_cfg("", opts + ["SOLVER.FORWARD_BATCH_SIZE", "8"])
    with pytest.raises(ConfigError, match="ToyCentroidClassifier.*FORWARD_BATCH_SIZE 0"):
        DefaultTrainer(cfg)


def test_plugin_by_module_name(tmp_path, monkeypatch):
    (tmp_path / "my_dotted_plugin.py").write_text(
        "from unreidusl.modeling import LOSS_REGISTRY\n"
        "@LOSS_REGISTRY.register()\n"
        "def DottedPluginLoss(cfg):\n    return None\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    import_plugin("my_dotted_plugin")
    assert "DottedPluginLoss" in LOSS_REGISTRY


def test_missing_plugin_is_a_clear_error(tmp_path):
    with pytest.raises(ImportError, match="no_such_plugin"):
        setup_cfg("", ["PLUGINS", "['no_such_plugin_xyz']"])
    with pytest.raises(ImportError, match="does not exist"):
        setup_cfg("", ["PLUGINS", f"['{tmp_path / 'missing.py'}']"])
