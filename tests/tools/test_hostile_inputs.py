"""Bad values, files and faults reach the user as one line naming the key, file or folder and the
fix (exit code 1 or 2), never as a traceback: numeric keys out of range, batch sizes the sampler or
the processes cannot split, an eps past the Jaccard range, an unwritable DATASETS.ROOT, --resume
into another architecture or with a damaged last_checkpoint, a full disk while checkpointing, a
model that turns NaN while the loss stays finite, and an empty query folder."""
import errno
import os
import shutil
import subprocess
from unittest import mock

import numpy as np
import pytest
import torch

from unreidusl.engine import HOOK_REGISTRY, HookBase
from unreidusl.utils.checkpoint import CheckpointError, atomic_torch_save

from helpers import main, tiny_opts


def _one_line(capsys, *needles):
    out = capsys.readouterr()
    text = out.out + out.err
    assert "Traceback" not in text, text
    lines = [ln for ln in text.splitlines() if "error" in ln.lower()]
    assert len(lines) == 1, text
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])
    return lines[0]


@pytest.mark.parametrize("key,value,needle", [
    ("SOLVER.IMS_PER_BATCH", "0", "> 0"),
    ("SOLVER.IMS_PER_BATCH", "18", "DATALOADER.NUM_INSTANCES = 4"),
    ("INPUT.SIZE_TRAIN", "[0,32]", "two positive integers"),
    ("CLUSTER.MIN_SAMPLES", "0", "> 0"),
    ("MODEL.BACKBONE.DEPTH", "19", "one of (18, 34, 50, 101, 152)"),
    ("DATALOADER.NUM_WORKERS", "-1", ">= 0"),
    ("MODEL.LOSSES.CE.EPSILON", "1.5", "in [0, 1)"),
    ("MEAN_TEACHER.ALPHA", "2.0", "in [0, 1]"),
    ("CLUSTER.K2", "40", "CLUSTER.K1"),
    ("MODEL.BN_VIRTUAL_SPLITS", "3", "MODEL.BN_VIRTUAL_SPLITS = 3"),
])
def test_out_of_range_values_stop_before_any_work(tiny_root, tmp_path, capsys, key, value, needle):
    out = tmp_path / "o"
    assert main(tiny_opts(tiny_root, out) + [key, value]) == 2
    _one_line(capsys, key, needle)
    assert not out.exists()                                   # nothing was started


def test_batch_must_split_over_the_processes(tiny_root, tmp_path, capsys):
    assert main(["--num-gpus", "3"] + tiny_opts(tiny_root, tmp_path / "o")) == 2
    _one_line(capsys, "SOLVER.IMS_PER_BATCH = 16", "3 processes")


def test_eps_past_the_jaccard_range(tiny_root, tmp_path, capsys):
    # DBSCAN: every pair is a neighbour, the empty-cluster policy reports the single cluster
    assert main(tiny_opts(tiny_root, tmp_path / "a", **{"CLUSTER.EPS": 3.0})) == 1
    _one_line(capsys, "into one cluster", "Decrease CLUSTER.EPS")
    # ICDBSCAN on the sparse Jaccard distance refuses such an eps
    assert main(tiny_opts(tiny_root, tmp_path / "b", **{"CLUSTER.EPS": 3.0,
                                                         "CLUSTER.TOC.ENABLED": True})) == 1
    _one_line(capsys, "ICDBSCAN with eps=3", "below 1")


def test_unwritable_synthetic_root(tmp_path, capsys):
    root = tmp_path / "ro"
    root.mkdir()
    denied = PermissionError(errno.EACCES, "Permission denied", str(root / "synthetic"))
    with mock.patch("unreidusl.data.synthetic.make_synthetic", side_effect=denied):
        assert main(tiny_opts(str(root), tmp_path / "o")) == 1
    _one_line(capsys, str(root), "Permission denied", "writable")
    if os.geteuid() != 0:                                     # a real read-only folder (root ignores it)
        os.chmod(root, 0o500)
        try:
            assert main(tiny_opts(str(root), tmp_path / "o2")) == 1
            _one_line(capsys, str(root), "writable")
        finally:
            os.chmod(root, 0o700)


@pytest.mark.slow
def test_resume_into_another_architecture_or_with_a_damaged_marker(tiny_root, tmp_path, capsys):
    run = tmp_path / "run"
    assert main(tiny_opts(tiny_root, run, **{"SOLVER.MAX_EPOCHS": 1})) == 0
    capsys.readouterr()
    assert main(["--resume"] + tiny_opts(tiny_root, run, **{"SOLVER.MAX_EPOCHS": 2,
                                                             "MODEL.BACKBONE.DEPTH": 34})) == 1
    _one_line(capsys, "CheckpointError", str(run / "model_final.pth"), "another model", "config.yaml")
    (run / "last_checkpoint").write_bytes(b"\x00\xff\xfe binary")
    assert main(["--resume"] + tiny_opts(tiny_root, run, **{"SOLVER.MAX_EPOCHS": 2})) == 1
    _one_line(capsys, "CheckpointError", str(run / "last_checkpoint"), "delete it")


def test_full_disk_while_checkpointing_is_a_checkpoint_error(tmp_path):
    """torch.save reports a failed write as a RuntimeError without the cause: the toolkit keeps the
    OSError (ENOSPC) and names the file."""
    real_fdopen = os.fdopen

    class FillsUp:
        def __init__(self, f):
            self.f, self.written = f, 0

        def write(self, data):
            self.written += len(data)
            if self.written > 2000:
                raise OSError(errno.ENOSPC, "No space left on device")
            return self.f.write(data)

        def __getattr__(self, name):
            return getattr(self.f, name)

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.f.close()

    target = tmp_path / "model_0001.pth"
    with mock.patch("os.fdopen", lambda fd, mode: FillsUp(real_fdopen(fd, mode))):
        with pytest.raises(CheckpointError, match="No space left on device") as e:
            atomic_torch_save({"w": torch.zeros(100000)}, str(target))
    assert str(target) in str(e.value) and not os.listdir(tmp_path)


def test_full_disk_on_a_real_small_filesystem(tmp_path):
    fs = tmp_path / "small"
    fs.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(fs)],
                             capture_output=True).returncode == 0
    if not mounted:
        pytest.skip("mounting a small tmpfs needs privileges this machine does not give")
    try:
        with pytest.raises(CheckpointError, match="No space left on device"):
            atomic_torch_save({"w": torch.zeros(100000)}, str(fs / "model_0001.pth"))
        assert not os.listdir(fs)
    finally:
        subprocess.run(["umount", str(fs)], check=False)


@HOOK_REGISTRY.register()
class PoisonBatchNormAtEpoch2(HookBase):
    """Test hook: after the first step of epoch 2, a BN running mean turns NaN (the training loss,
    computed with batch statistics, stays finite)."""

    def __init__(self, cfg, trainer):
        pass

    def after_step(self):
        t = self.trainer
        if t.epoch == 1 and t.inner_iter == 0:
            with torch.no_grad():
                t.model.encoder.neck.running_mean.fill_(float("nan"))


@pytest.mark.slow
def test_model_turning_nan_with_a_finite_loss_stops_at_that_step(tiny_root, tmp_path, capsys):
    run = tmp_path / "run"
    rc = main(tiny_opts(tiny_root, run, **{"HOOKS": "['PoisonBatchNormAtEpoch2']", "SOLVER.MAX_EPOCHS": 2}))
    assert rc == 1
    line = _one_line(capsys, "FloatingPointError", "epoch 2 iteration 2", "encoder.neck.running_mean")
    assert str(run / "model_0001.pth") in line                # this run's checkpoint
    assert not (run / "model_final.pth").exists()


def test_empty_query_folder(tiny_root, tmp_path, capsys):
    src = os.path.join(tiny_root, "synthetic", "tiny-seed0", "Market-1501-v15.09.15")
    root = tmp_path / "datasets"
    shutil.copytree(src, root / "Market-1501-v15.09.15")
    for f in (root / "Market-1501-v15.09.15" / "query").iterdir():
        f.unlink()
    opts = tiny_opts(str(root), tmp_path / "o", **{"DATASETS.TRAIN": "Market1501", "DATASETS.TEST": "Market1501"})
    assert main(opts) == 1
    _one_line(capsys, "query split is empty", str(root))


def test_sixteen_bit_png_and_decompression_bomb(tmp_path):
    from PIL import Image

    from unreidusl.data.transforms import CorruptImageError, read_image

    grey = (np.arange(40 * 20).reshape(40, 20) * 80).astype(np.uint16)
    path = tmp_path / "grey16.png"
    Image.fromarray(grey).save(path)
    assert Image.open(path).mode.startswith("I")
    rgb = np.asarray(read_image(str(path)))
    assert rgb.shape == (40, 20, 3) and rgb.max() < 255          # not clipped to white
    assert np.array_equal(rgb[..., 0], np.rint(grey / 257.0).astype(np.uint8))
    with mock.patch.object(Image, "MAX_IMAGE_PIXELS", 100):
        with pytest.raises(CorruptImageError, match="too large to decode safely") as e:
            read_image(str(path))
    assert str(path) in str(e.value) and "DATASETS.SKIP_CORRUPT" in str(e.value)
