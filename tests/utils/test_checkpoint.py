import os
import pickle

import numpy as np
import pytest
import torch

from unreidusl.utils import checkpoint as ckpt
from unreidusl.utils.checkpoint import (Checkpointer, CheckpointError, load_checkpoint, rng_state,
                                        set_rng_state)


def test_save_load_weights_only_and_last_checkpoint(tmp_path):
    c = Checkpointer(str(tmp_path))
    assert c.last_checkpoint() is None
    state = {"model": {"w": torch.arange(4.0)}, "epoch": 3, "rng": rng_state()}
    c.save("model_0003", state)
    path = c.last_checkpoint()
    assert path.endswith("model_0003.pth")
    loaded = load_checkpoint(path)
    assert loaded["epoch"] == 3 and torch.equal(loaded["model"]["w"], torch.arange(4.0))
    assert not [f for f in os.listdir(tmp_path) if f.startswith(".tmp-")]


def test_rng_state_round_trip():
    state = rng_state()
    a = (np.random.rand(), torch.rand(1).item(), __import__("random").random())
    set_rng_state(load_roundtrip(state))
    b = (np.random.rand(), torch.rand(1).item(), __import__("random").random())
    assert a == b


def load_roundtrip(obj):
    import io

    buf = io.BytesIO()
    torch.save(obj, buf)
    buf.seek(0)
    return torch.load(buf, weights_only=True)


def test_failed_write_keeps_previous_checkpoint(tmp_path, monkeypatch):
    c = Checkpointer(str(tmp_path))
    c.save("model_0001", {"epoch": 1})

    def disk_full(obj, f):
        f.write(b"partial")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(ckpt.torch, "save", disk_full)
    with pytest.raises(CheckpointError, match="previous checkpoint"):
        c.save("model_0001", {"epoch": 2})
    monkeypatch.undo()
    assert load_checkpoint(c.last_checkpoint())["epoch"] == 1
    assert not [f for f in os.listdir(tmp_path) if f.startswith(".tmp-")]


class _Evil:
    def __reduce__(self):
        return (os.system, ("echo pwned > /dev/null",))


def test_malicious_pickle_is_refused(tmp_path):
    path = tmp_path / "evil.pth"
    with open(path, "wb") as f:
        pickle.dump({"model": _Evil()}, f)
    with pytest.raises(CheckpointError, match="refuses to execute"):
        load_checkpoint(str(path))


def test_truncated_checkpoint_is_a_clear_error(tmp_path):
    path = tmp_path / "t.pth"
    torch.save({"w": torch.zeros(1000)}, path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match=str(path)):
        load_checkpoint(str(path))
