"""No file that unreidusl reads executes code: checkpoints, weights and ImageNet weights load with
``weights_only=True``, auxiliary files are ``.npz`` read with ``allow_pickle=False``, and the original
AuxUSLReID pickles need AUX.ALLOW_PICKLE.  Each test feeds a file whose unpickling would create a
marker file, and checks that the load is refused and the marker never appears."""
import ast
import os
import pickle
import re

import numpy as np
import pytest
import torch

from unreidusl.auxinfo import load_aux, load_test_aux, load_train_aux
from unreidusl.auxinfo.transit import TransitModel
from unreidusl.data.datasets.bases import Sample
from unreidusl.engine import setup_cfg
from unreidusl.modeling import build_model
from unreidusl.utils.checkpoint import CheckpointError
from unreidusl.utils.safe_npz import UnsafeFileError

from helpers import ROOT, main, tiny_opts


class _Payload:
    marker = ""

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


@pytest.fixture
def payload(tmp_path):
    _Payload.marker = str(tmp_path / "pwned")
    yield _Payload()
    assert not os.path.exists(_Payload.marker), "unpickling executed the payload"


def _write_pickle(path, obj):
    with open(path, "wb") as f:
        pickle.dump(obj, f)
    return str(path)


def test_model_weights_and_resume_checkpoint_are_refused(tiny_root, tmp_path, payload, capsys):
    evil = _write_pickle(tmp_path / "evil.pth", {"model": payload})
    assert main(["--eval-only"] + tiny_opts(tiny_root, tmp_path / "w") + ["MODEL.WEIGHTS", evil]) == 1
    out = capsys.readouterr().out
    assert "CheckpointError" in out and evil in out and "refuses to execute" in out
    run = tmp_path / "r"
    run.mkdir()
    _write_pickle(run / "model_0001.pth", {"model": payload, "epoch": 1})
    (run / "last_checkpoint").write_text("model_0001.pth")
    assert main(["--resume"] + tiny_opts(tiny_root, run)) == 1
    assert "refuses to execute" in capsys.readouterr().out


def test_imagenet_weights_file_is_refused(tmp_path, payload):
    evil = _write_pickle(tmp_path / "resnet18.pth", {"conv1.weight": payload})
    cfg = setup_cfg("", ["MODEL.BACKBONE.DEPTH", "18", "MODEL.BACKBONE.PRETRAIN", "True",
                         "MODEL.BACKBONE.PRETRAIN_PATH", evil])
    with pytest.raises(CheckpointError, match="refuses to execute"):
        build_model(cfg)


def _samples(n, prefix):
    return [Sample((f"/d/{prefix}/{i:04d}_c{i % 2 + 1}_f{i:07d}.jpg",), i, i % 2) for i in range(n)]


def test_aux_pickles_need_the_opt_in_and_npz_objects_are_refused(tmp_path, payload):
    train, query, gallery = _samples(4, "train"), _samples(2, "query"), _samples(3, "gallery")
    _write_pickle(tmp_path / "cannotlink_pts.pickle", [payload] * 4)
    with pytest.raises(UnsafeFileError, match="AUX.ALLOW_PICKLE"):
        load_train_aux(str(tmp_path), train)
    test_dir = tmp_path / "test"
    test_dir.mkdir()
    _write_pickle(test_dir / "overlap_relation.pickle", payload)
    with pytest.raises(UnsafeFileError, match="AUX.ALLOW_PICKLE"):
        load_test_aux(str(test_dir), query, gallery)
    npz = str(tmp_path / "train_aux.npz")
    np.savez(npz, format=np.array([payload], dtype=object))          # an object array = a pickle
    with pytest.raises(UnsafeFileError, match=re.escape(npz) + ".*refused.*tools/mine_aux.py"):
        load_aux(npz, {})
    np.savez(npz, transit_table=np.array([payload], dtype=object), transit_bin=np.float64(1))
    with pytest.raises(UnsafeFileError, match=re.escape(npz) + ".*refused"):
        TransitModel.load(npz)


def test_truncated_npz_names_the_file(tmp_path):
    npz = str(tmp_path / "transit.npz")
    TransitModel(np.ones((2, 2, 3)), 5.0).save(npz)
    data = open(npz, "rb").read()
    with open(npz, "wb") as f:
        f.write(data[: len(data) // 2])
    with pytest.raises(ValueError, match=re.escape(npz) + ".*corrupt: delete it"):
        TransitModel.load(npz)


def _loads(tree):
    """Calls ``<name>.load(...)`` / ``<name>.loads(...)``."""
    for node in ast.walk(tree):
        func = getattr(node, "func", None)
        if isinstance(node, ast.Call) and isinstance(func, ast.Attribute) and func.attr in ("load", "loads"):
            yield node


def _keyword(node, key):
    return next((k.value for k in node.keywords if k.arg == key), None)


def test_every_loader_in_the_code_is_safe_or_an_explicit_opt_in():
    """torch.load only with weights_only=True; np.load never with allow_pickle=True; pickle.load(s)
    only in auxinfo/files.py (load_legacy_pickle, behind AUX.ALLOW_PICKLE)."""
    found = []
    for folder in ("unreidusl", "tools", "benchmarks"):
        for dirpath, _, files in os.walk(os.path.join(ROOT, folder)):
            for name in files:
                if not name.endswith(".py"):
                    continue
                path = os.path.join(dirpath, name)
                rel = os.path.relpath(path, ROOT)
                tree = ast.parse(open(path).read())
                for node in _loads(tree):
                    owner = getattr(node.func.value, "id", "")
                    if owner == "torch":
                        weights_only = _keyword(node, "weights_only")
                        assert isinstance(weights_only, ast.Constant) and weights_only.value is True, rel
                    elif owner == "np":
                        allow = _keyword(node, "allow_pickle")
                        assert allow is None or getattr(allow, "value", None) is False, rel
                    elif owner in ("pickle", "dill", "joblib", "cloudpickle"):
                        assert rel == os.path.join("unreidusl", "auxinfo", "files.py"), rel
                    found.append((rel, owner))
    assert (os.path.join("unreidusl", "utils", "checkpoint.py"), "torch") in found
