"""A checkpoint that cannot be written (disk full, read-only OUTPUT_DIR) leaves the previous one intact
and the error names it."""
import errno
import os

import pytest

from unreidusl.utils import checkpoint as ckpt
from unreidusl.utils.checkpoint import Checkpointer, CheckpointError, load_checkpoint

from helpers import main, tiny_opts


def _no_temp_files(folder):
    return not [f for f in os.listdir(folder) if f.startswith(".tmp-")]


def test_full_disk_while_writing_the_marker_keeps_the_previous_checkpoint(tmp_path, monkeypatch):
    c = Checkpointer(str(tmp_path))
    first = c.save("model_0001", {"epoch": 1})
    real = ckpt._atomic_write

    def marker_fails(path, write):
        if path.endswith(ckpt.LAST_CHECKPOINT):
            raise OSError(errno.ENOSPC, "No space left on device")
        real(path, write)

    monkeypatch.setattr(ckpt, "_atomic_write", marker_fails)
    with pytest.raises(CheckpointError) as e:
        c.save("model_0002", {"epoch": 2})
    msg = str(e.value)
    assert f"previous checkpoint {first} is intact" in msg and "No space left" in msg and "OUTPUT_DIR" in msg
    assert c.last_checkpoint() == first and load_checkpoint(first)["epoch"] == 1
    assert _no_temp_files(tmp_path)


def _save_as_nobody(folder):
    """In a child process without root's permission override: try to save; exit 0 when the save
    failed with the expected message."""
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            os.setgid(65534)
            os.setuid(65534)
            try:
                Checkpointer(folder).save("model_0002", {"epoch": 2})
            except CheckpointError as e:
                code = 0 if "Permission denied" in str(e) and "previous checkpoint" in str(e) else 3
        finally:
            os._exit(code)
    return os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])


def test_read_only_output_dir_keeps_the_previous_checkpoint(tmp_path):
    folder = tmp_path / "out"
    c = Checkpointer(str(folder))
    first = c.save("model_0001", {"epoch": 1})
    os.chmod(tmp_path, 0o755)
    os.chmod(folder, 0o555)
    try:
        if os.geteuid() == 0:  # root ignores the mode bits: drop to "nobody" in a child process
            assert _save_as_nobody(str(folder)) == 0
        else:
            with pytest.raises(CheckpointError, match="Permission denied"):
                c.save("model_0002", {"epoch": 2})
    finally:
        os.chmod(folder, 0o755)
    assert c.last_checkpoint() == first and load_checkpoint(first)["epoch"] == 1
    assert sorted(os.listdir(folder)) == [ckpt.LAST_CHECKPOINT, "model_0001.pth"]


@pytest.mark.slow
def test_training_stops_on_a_full_disk_naming_the_checkpoint_to_resume(tiny_root, tmp_path, monkeypatch,
                                                                         capsys):
    out = tmp_path / "run"
    real = ckpt.torch.save

    def fill_disk_after_first(obj, f):
        if os.path.isfile(out / "model_0001.pth"):
            f.write(b"partial")
            raise OSError(errno.ENOSPC, "No space left on device")
        real(obj, f)

    monkeypatch.setattr(ckpt.torch, "save", fill_disk_after_first)
    opts = tiny_opts(tiny_root, out, **{"SOLVER.ITERS_PER_EPOCH": 1, "TEST.EVAL_PERIOD": 0,
                                         "CLUSTER.SIZE_HISTOGRAM": False})
    assert main(opts) == 1
    text = capsys.readouterr().out
    assert "CheckpointError" in text and "Traceback" not in text
    assert f"previous checkpoint {out / 'model_0001.pth'} is intact" in text
    assert load_checkpoint(str(out / "model_0001.pth"))["epoch"] == 1
    assert not (out / "model_final.pth").exists() and _no_temp_files(out)
