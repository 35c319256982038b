"""unreidusl-export (tools/export.py): TorchScript and ONNX give the PyTorch features within 1e-4,
for another batch size than the traced one; a clear message without the optional onnx package."""
import json
import os
import sys
import warnings

import numpy as np
import pytest
import torch

from unreidusl.apps.common import load_trained

from helpers import load_tool


@pytest.fixture(scope="module")
def exported(trained_run, tmp_path_factory):
    pytest.importorskip("onnx", reason="the ONNX export needs the optional onnx package "
                                       "(pip install -e \".[export]\")")
    out = tmp_path_factory.mktemp("export")
    assert load_tool("export").main(["--checkpoint", trained_run["checkpoints"][1],
                                     "--output", str(out)]) == 0
    return out


def reference(trained_run, x):
    _, model, _ = load_trained(trained_run["checkpoints"][1])
    with torch.no_grad():
        return model.cpu().eval()({"images": x}).numpy()


def batch(n=3):
    return torch.randn(n, 3, 64, 32, generator=torch.Generator().manual_seed(3))


def test_torchscript_matches_pytorch(trained_run, exported):
    info = json.load(open(exported / "export.json"))
    assert info["input"]["shape"] == ["batch", 3, 64, 32] and info["output"]["shape"][1] == 512
    assert info["input"]["pixel_mean"] == [0.485, 0.456, 0.406]
    assert info["check"]["torchscript_max_abs_diff"] <= 1e-4
    x = batch()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        scripted = torch.jit.load(str(exported / "model.ts"))
    with torch.no_grad():
        got = scripted(x).numpy()
    assert np.abs(got - reference(trained_run, x)).max() <= 1e-4


def test_onnx_matches_pytorch(trained_run, exported):
    ort = pytest.importorskip("onnxruntime", reason="onnxruntime is not installed: the ONNX model "
                                                    "cannot be run (pip install onnxruntime)")
    info = json.load(open(exported / "export.json"))
    assert info["check"]["onnx_max_abs_diff"] <= 1e-4
    x = batch(5)
    session = ort.InferenceSession(str(exported / "model.onnx"), providers=["CPUExecutionProvider"])
    got = session.run(["features"], {"images": x.numpy()})[0]
    assert got.shape == (5, 512)
    assert np.abs(got - reference(trained_run, x)).max() <= 1e-4


def test_clear_message_without_onnx(trained_run, tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "onnx", None)          # import onnx -> ImportError
    export = load_tool("export")
    assert export.main(["--checkpoint", trained_run["checkpoints"][1], "--output",
                        str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert 'pip install -e ".[export]"' in err and "--format torchscript" in err
    assert export.main(["--checkpoint", trained_run["checkpoints"][1], "--output", str(tmp_path),
                        "--format", "torchscript"]) == 0
    assert os.listdir(tmp_path) and not (tmp_path / "model.onnx").exists()
