"""benchmarks/bench_pseudo_label.py: every method's pseudo-label step and training step, and its
dense N x N detection (the real sizes, N = 12,936 and 32,621, are benchmarks/RESULTS.md's)."""
import argparse
import importlib.util
import os
import subprocess
import sys

import numpy as np
import pytest
import torch

from helpers import ROOT

SCRIPT = os.path.join(ROOT, "benchmarks", "bench_pseudo_label.py")


def _bench():
    spec = importlib.util.spec_from_file_location("bench_pseudo_label", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
def test_every_method_runs_at_a_tiny_size():
    """N = 500, all methods in one process, 16 images per step, no warm-up step: ~20-30 s on 2 cores."""
    bench = _bench()
    out = subprocess.run([sys.executable, SCRIPT, "--sizes", "500", "--in-process", "--batch", "16",
                          "--warmup", "0"], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stdout + out.stderr
    rows = [[c.strip() for c in line.strip().strip("|").split("|")]
            for line in out.stdout.splitlines() if line.startswith("|") and not line.startswith("|--")]
    header, body = rows[0], rows[1:]
    assert header[:2] == ["method", "N"] and header[-1] == "status" and "label peak MB" in header[8]
    assert sorted(r[0] for r in body) == sorted(bench.METHODS)
    for r in body:
        assert r[1] == "500" and r[-1] == "ok" and int(r[2]) > 0, r
    assert "all 6 cases passed" in out.stdout


def test_dense_nxn_arrays_and_memory_fail_the_run():
    bench = _bench()

    class Toy(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.register_buffer("bank", torch.zeros(3, 50, 7))     # N x C: fine
            self.register_buffer("pairs", torch.zeros(50, 50))      # N x N: a failure
            self.cache = [np.zeros((60, 60), np.float32)]           # plain attribute, also seen

    found = {name: bench._dense_nxn(name, t, 50) for name, _, t in bench._stored_tensors(Toy())}
    assert found["Toy:bank"] is None
    assert found["Toy:pairs"].startswith("Toy:pairs [50, 50]")
    assert found["Toy:cache[0]"].startswith("Toy:cache[0] [60, 60]")

    args = argparse.Namespace(max_rss_gb=4.0, rss_check_min_mb=256.0)
    ok = dict(method="M", n=20000, dense=[], base_mb=800.0, label_peak_mb=1200.0, step_peak_mb=1500.0,
              distance="JaccardDistance", clusterer="DBSCAN")
    assert bench.judge(ok, args) == []
    # one N x N float32 array at N = 20,000 is 1,526 MB
    assert "N x N" in bench.judge(dict(ok, label_peak_mb=800.0 + 1600), args)[0]
    assert "exceeds 4 GB" in bench.judge(dict(ok, step_peak_mb=4200.0), args)[0]
    assert "dense N x N" in bench.judge(dict(ok, dense=["Toy:pairs [20000, 20000]"]), args)[0]
    assert bench.judge(dict(ok, n=500, label_peak_mb=1200.0), args) == []  # below --rss-check-min-mb
    assert bench.judge({"method": "M", "n": 5, "error": "boom"}, args) == ["boom"]
