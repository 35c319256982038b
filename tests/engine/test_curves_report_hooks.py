"""CurvesHook (OUTPUT_DIR/curves.png) and ClusterReportHook (CLUSTER.REPORT: OUTPUT_DIR/clusters/)
on a finished training run; one instance of each even when named twice."""
import csv
import json
import os

import numpy as np
import pytest
from PIL import Image

from unreidusl.apps.html import images_in_html
from unreidusl.engine import HOOK_REGISTRY
from unreidusl.utils.charts import curves_from_metrics, training_curves
from unreidusl.utils.checkpoint import load_checkpoint


def test_hooks_are_registered():
    assert "CurvesHook" in HOOK_REGISTRY and "ClusterReportHook" in HOOK_REGISTRY


def test_curves_png_holds_every_epoch(trained_run):
    path = os.path.join(trained_run["dir"], "curves.png")
    with Image.open(path) as im:
        assert im.format == "PNG" and im.size[0] > im.size[1] > 200
    state = load_checkpoint(trained_run["checkpoints"][1])["hooks"]["CurvesHook"]
    records = {int(k): v for k, v in json.loads(state["records"]).items()}
    assert sorted(records) == [0, 1, 2]                        # evaluation before training = 0
    assert set(records[0]) == {"test/mAP", "test/Rank-1"}
    # the same numbers as metrics.json (which the discovery report reads)
    from_json = {r["epoch"]: r for r in curves_from_metrics(os.path.join(trained_run["dir"],
                                                                          "metrics.json"))}
    for epoch, rec in records.items():
        for key, value in rec.items():
            assert from_json[epoch][key] == pytest.approx(value), (epoch, key)
    assert {"cluster/pairwise_f", "cluster/num_clusters", "test/mAP"} <= set(records[2])


def test_cluster_report_of_the_last_epoch(trained_run):
    folder = os.path.join(trained_run["dir"], "clusters")
    with open(os.path.join(folder, "clusters.csv"), newline="") as f:
        rows = list(csv.DictReader(f))
    final = load_checkpoint(trained_run["checkpoints"][1])["hooks"]
    np.testing.assert_array_equal([int(r["cluster"]) for r in rows],
                                  final["PseudoLabelHook"]["labels"].numpy())
    assert final["ClusterReportHook"] == {"done": True}
    html = open(os.path.join(folder, "report.html")).read()
    assert "epoch 2 (last)" in html and "pairwise_f" in html
    for src in images_in_html(html):
        assert os.path.isfile(os.path.join(folder, src)), src


def test_training_curves_without_data(tmp_path):
    assert training_curves([{"epoch": 1}], str(tmp_path / "none.png")) is None
    path = training_curves([{"epoch": 0, "test/mAP": 10.0}, {"epoch": 1, "test/mAP": 20.0}],
                           str(tmp_path / "c.png"))
    assert os.path.isfile(path)


def test_curves_hook_records_and_draws(tmp_path, monkeypatch):
    """Fresh scalars go to the epoch they were logged in; drawing is rate-limited."""
    from types import SimpleNamespace

    from unreidusl.config import get_cfg
    from unreidusl.engine.curves_hook import CurvesHook
    from unreidusl.utils.events import EventStorage

    cfg = get_cfg()
    cfg.OUTPUT_DIR = str(tmp_path)
    hook = CurvesHook(cfg)
    storage = EventStorage()
    trainer = SimpleNamespace(storage=storage, epoch=0, start_epoch=0, hooks=[hook])
    hook.trainer = trainer
    storage.put_scalars(**{"test/mAP": 10.0, "test/Rank-1": 20.0})        # before training
    hook.before_train()
    storage.iter = 5
    storage.put_scalars(**{"cluster/num_clusters": 7, "cluster/pairwise_f": 0.5, "loss": 1.0})
    storage.iter = 10
    storage.put_scalars(**{"test/mAP": 30.0})
    hook.after_epoch()
    assert not (tmp_path / "curves.png").exists()                         # drawn < 60 s ago
    trainer.epoch = 1
    storage.iter = 20
    storage.put_scalars(**{"test/mAP": 40.0})
    monkeypatch.setattr(CurvesHook, "MIN_INTERVAL", 0.0)
    hook.after_epoch()
    assert (tmp_path / "curves.png").exists()
    assert hook.history() == [{"epoch": 0, "test/mAP": 10.0, "test/Rank-1": 20.0},
                              {"epoch": 1, "cluster/num_clusters": 7.0, "cluster/pairwise_f": 0.5,
                               "test/mAP": 30.0},
                              {"epoch": 2, "test/mAP": 40.0}]
    again = CurvesHook(cfg)                                               # a second instance
    again.trainer = SimpleNamespace(storage=storage, epoch=1, start_epoch=0, hooks=[hook, again])
    again.before_train()
    assert not again._active
    restored = CurvesHook(cfg)
    restored.load_state_dict(hook.state_dict())
    assert restored.history() == hook.history()
