"""unreidusl-discover (tools/discover.py): the last epoch's pseudo-labels of a training run are
reproduced from its checkpoint (P/R/F, NMI, the frozen adaptive eps), and the HTML report holds
every cluster with image links that resolve."""
import csv
import json
import os
import re
import shutil

import numpy as np
import pytest

from unreidusl.apps.html import images_in_html
from unreidusl.apps.report import centroid_distances, merges_and_splits
from unreidusl.utils.checkpoint import load_checkpoint

from helpers import load_tool

KEYS = ("pairwise_precision", "pairwise_recall", "pairwise_f", "nmi", "num_clusters", "eps")


def epoch_record(run_dir, epoch):
    """The cluster/* scalars metrics.json logged for ``epoch`` (1-based)."""
    out = {}
    for line in open(os.path.join(run_dir, "metrics.json")):
        rec = json.loads(line)
        if rec["epoch"] == epoch:
            out.update({k[len("cluster/"):]: v for k, v in rec.items() if k.startswith("cluster/")})
    return out


def read_csv(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def check_report(folder, rows):
    """Every cluster of clusters.csv has its section and sheet; every <img> resolves."""
    html = open(os.path.join(folder, "report.html")).read()
    clusters = sorted({int(r["cluster"]) for r in rows if int(r["cluster"]) >= 0})
    found = sorted(int(c) for c in re.findall(r'<h3 id="cluster-(\d+)">', html))
    assert found == clusters and clusters == list(range(len(clusters)))
    srcs = images_in_html(html)
    for c in clusters:
        assert f"sheets/cluster_{c:05d}.png" in srcs
    assert "sizes.png" in srcs
    for src in srcs:
        assert not os.path.isabs(src) and os.path.isfile(os.path.join(folder, src)), src
    outliers = [r for r in rows if r["outlier"] == "1"]
    assert ("sheets/outliers.png" in srcs) == bool(outliers)
    return html


def test_discover_reproduces_the_last_epochs_pseudo_labels(trained_run, tmp_path):
    discover = load_tool("discover")
    ckpt = trained_run["checkpoints"][0]          # the model the last (2nd) epoch clustered with
    assert load_checkpoint(ckpt)["hooks"]["PseudoLabelHook"]["eps"] is not None   # frozen eps
    out = tmp_path / "discover"
    assert discover.main(["--checkpoint", ckpt, "--output", str(out)]) == 0
    summary = json.load(open(out / "summary.json"))
    logged = epoch_record(trained_run["dir"], 2)
    for key in KEYS:
        assert summary[key] == pytest.approx(logged[key], abs=1e-12), key
    # the labels themselves: those the final checkpoint stores for the last epoch
    final = load_checkpoint(trained_run["checkpoints"][1])["hooks"]["PseudoLabelHook"]["labels"]
    rows = read_csv(out / "clusters.csv")
    np.testing.assert_array_equal([int(r["cluster"]) for r in rows], final.numpy())
    assert list(rows[0]) == ["item", "path", "num_frames", "cluster", "camera", "time_start",
                             "time_end", "distance", "nearest_cluster", "outlier", "pid"]
    for r in rows:
        assert (r["outlier"] == "1") == (r["cluster"] == "-1")
        assert 0.0 <= float(r["distance"]) <= 2.0 and r["time_start"] != ""
        assert int(r["nearest_cluster"]) >= 0
    html = check_report(str(out), rows)
    assert "Worst merges" in html and "Worst splits" in html and "curves.png" in html
    assert "nmi" in html


def test_discover_on_an_unlabelled_folder(trained_run, tmp_path):
    discover = load_tool("discover")
    folder = tmp_path / "photos"
    src = os.path.join(trained_run["root"], "synthetic", "tiny-seed0", "Market-1501-v15.09.15",
                       "bounding_box_train")
    shutil.copytree(src, folder / "cam_a")                      # names carry no meaning here
    out = tmp_path / "out"
    assert discover.main(["--checkpoint", trained_run["checkpoints"][1], "--items", str(folder),
                          "--output", str(out), "--eps", "0.5"]) == 0
    summary = json.load(open(out / "summary.json"))
    assert "pairwise_f" not in summary and summary["eps"] == pytest.approx(0.5)
    rows = read_csv(out / "clusters.csv")
    assert len(rows) == len(os.listdir(folder / "cam_a")) and "pid" not in rows[0]
    html = check_report(str(out), rows)
    assert "Worst merges" not in html


def test_merges_splits_and_centroid_distances():
    labels = np.array([0, 0, 0, 1, 1, -1, 2, 2])
    truth = np.array([5, 5, 6, 7, 7, 7, 8, 8])
    merges, splits = merges_and_splits(labels, truth)
    assert merges == [{"cluster": 0, "size": 3, "false_pairs": 2, "identities": [(5, 2), (6, 1)]}]
    assert splits == [{"pid": 7, "size": 3, "missed_pairs": 2, "clusters": [(1, 2), (-1, 1)]}]
    feats = np.array([[1, 0], [1, 0], [0, 1], [0, 1], [0, 1], [1, 0.1], [1, 1], [1, 1]], np.float32)
    dist, nearest = centroid_distances(feats, labels)
    assert dist[3] == pytest.approx(0.0, abs=1e-6) and nearest[5] == 0 and nearest[0] == 0
    assert dist[2] > dist[0] and np.all(dist >= 0)
