"""benchmarks/bench_ann.py: approximate vs exact kNN for Jaccard + DBSCAN (the real sizes, N = 50,000
to 1,000,000 in 2048-d, are benchmarks/RESULTS.md's)."""
import os
import subprocess
import sys

import numpy as np
import pytest

from helpers import ROOT

SCRIPT = os.path.join(ROOT, "benchmarks", "bench_ann.py")


def test_make_features_fills_a_memmap_like_an_array(tmp_path):
    sys.path.insert(0, os.path.join(ROOT, "benchmarks"))
    from bench_cluster import make_features

    from unreidusl.utils.feature_file import open_feature_file

    x, labels = make_features(300, 16, seed=3, per_cluster=32, chunk=64)
    mm = open_feature_file(tmp_path / "f.f32", 300, 16, "w+")
    _, same = make_features(300, 16, seed=3, per_cluster=32, chunk=64, out=mm)
    np.testing.assert_array_equal(mm, x)
    np.testing.assert_array_equal(same, labels)


@pytest.mark.slow
def test_tiny_run_on_disk_compares_approximate_and_exact():
    """N = 1,500, 48-d, features on disk: the three rows of the table, ~20 s on 2 cores."""
    out = subprocess.run([sys.executable, SCRIPT, "--sizes", "1500", "--dim", "48", "--exact-max", "1500",
                          "--on-disk", "--sample", "200", "--recall-queries", "300", "--pca-dim", "16",
                          "--refine", "2"], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "on_disk=True" in out.stdout and "features written to disk" in out.stdout
    table = out.stdout[out.stdout.rindex("| N "):].splitlines()
    rows = [[c.strip() for c in line.strip().strip("|").split("|")] for line in table
            if line.startswith("|") and not line.startswith("|--")]
    header, body = rows[0], rows[1:]
    assert [r[1].split(" ")[0] for r in body] == ["approx", "exact", "exact"]
    approx, exact, estimate = (dict(zip(header, r)) for r in body)
    assert approx["run"].startswith("approx faiss_ivf nlist=") and "pca=16" in approx["run"]
    assert float(approx["recall@k1"]) >= 0.9 and float(approx["ARI vs exact"]) >= 0.9
    assert approx["speed-up"].endswith("x") and exact["run"] == "exact (torch)"
    assert approx["note"].startswith("s: pca ") and "rescore" in approx["note"]
    assert approx["clusters"] == exact["clusters"] or float(approx["ARI vs exact"]) < 1
    assert 0 < float(estimate["in-cluster"]) <= 1 and "200 rows" in estimate["note"]
    assert all(float(r["peak RSS MB"]) > 0 for r in (approx, exact, estimate))
