"""``CLUSTER.FEATURES_ON_DISK``: the pseudo-label step clusters features held in a float32 file."""
import os
from types import SimpleNamespace

import numpy as np
import torch

import unreidusl.engine.hooks as hooks
from unreidusl.config import get_cfg
from unreidusl.utils.checkpoint import load_checkpoint
from unreidusl.utils.feature_file import open_feature_file

from helpers import main, tiny_opts


def test_training_clusters_features_on_disk_like_in_memory(tiny_root, tmp_path):
    runs = {}
    for name, extra in (("memory", {"CLUSTER.KNN_BACKEND": "numpy"}),
                        ("disk", {"CLUSTER.FEATURES_ON_DISK": True, "CLUSTER.KNN_BACKEND": "faiss_ivf",
                                  "CLUSTER.ANN.RECALL_QUERIES": 50})):
        out = tmp_path / name
        assert main(tiny_opts(tiny_root, out, **{"SOLVER.MAX_EPOCHS": 1, **extra})) == 0
        runs[name] = load_checkpoint(str(out / "model_final.pth"))["hooks"]["PseudoLabelHook"]["labels"]
    n = len(runs["disk"])
    size = os.path.getsize(tmp_path / "disk" / "cluster_features.f32")
    assert size % (4 * n) == 0 and not (tmp_path / "memory" / "cluster_features.f32").exists()
    assert "recall@10 = 1.000 on 50 sampled queries" in (tmp_path / "disk" / "log.txt").read_text()
    assert torch.equal(runs["disk"], runs["memory"])


def test_clip_draws_are_averaged_into_the_feature_file(tmp_path, monkeypatch):
    """Video with CLUSTER_SAMPLE_MULTI = R: R draws per sample (rows i·R + r) go to a temporary file,
    their normalised means to the feature file, as the in-memory path computes them."""
    n, draws, dim = 7, 3, 5
    raw = torch.randn(n * draws, dim)
    owner = torch.arange(n).repeat_interleave(draws)

    def fake_extract(model, cfg, samples, epoch, out_path=None):
        if out_path is None:
            return raw.clone(), owner
        mm = open_feature_file(out_path, n * draws, dim, "w+")
        mm[:] = raw.numpy()
        return torch.from_numpy(mm), owner

    monkeypatch.setattr(hooks, "extract_cluster_features", fake_extract)
    hook = hooks.PseudoLabelHook.__new__(hooks.PseudoLabelHook)
    hook.samples, hook.image_loader = list(range(n)), None
    hook.trainer = SimpleNamespace(epoch=0, model=SimpleNamespace(cluster_extractor=lambda: None))
    hook.cfg = get_cfg()
    hook.cfg.OUTPUT_DIR = str(tmp_path)
    in_memory = hook._features()
    hook.cfg.CLUSTER.FEATURES_ON_DISK = True
    on_disk = hook._features()
    assert torch.allclose(on_disk, in_memory, atol=1e-6)
    assert sorted(os.listdir(tmp_path)) == ["cluster_features.f32"]        # the draws file is gone
    np.testing.assert_array_equal(open_feature_file(tmp_path / "cluster_features.f32", n, dim), on_disk)
