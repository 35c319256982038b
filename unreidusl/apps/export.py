"""Export the embedding model to TorchScript and ONNX (``unreidusl-export``, ``tools/export.py``).

The exported model is the method's test encoder in eval mode, what the evaluator runs:
``model.eval(); model({"images": x})``. It takes one batch of images and returns their features:

* input ``images``: float32 ``[N, 3, H, W]``, ``(H, W)`` = ``INPUT.SIZE_TEST``, RGB, resized
  (bicubic, no crop) to that size, scaled to [0, 1] and normalised per channel with
  ``INPUT.PIXEL_MEAN`` / ``INPUT.PIXEL_STD``; the batch size is free;
* output ``features``: float32 ``[N, d]``, the test features (compare them with the Euclidean or
  cosine distance of ``TEST.METRIC``; most methods' features are already L2-normalised).

Writes into ``--output``: ``model.ts`` (TorchScript, ``torch.jit.load``), ``model.onnx`` (opset
``--opset``, dynamic batch; needs the optional ``onnx`` package: ``pip install -e ".[export]"``) and
``export.json`` (the input description above, the feature size, and the check). The check runs a
batch (``--check-images``, else the first items of the configured test set, else random
normalised inputs) through PyTorch and each exported model (ONNX through ``onnxruntime`` when
installed) and prints the largest absolute feature difference; above ``--atol`` (default 1e-4)
the export fails. The exported model embeds single images; for a video method the evaluator's
tracklet feature (pooled frame features averaged before the neck) is not part of the export.
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import warnings
from typing import Dict, Optional

import numpy as np
import torch

from .common import (AppError, add_model_arguments, collect_items, load_trained,
                     parse_model_command)

__all__ = ["EmbeddingModel", "export_torchscript", "export_onnx", "check_batch", "export", "main"]

logger = logging.getLogger(__name__)

ONNX_MISSING = ("ONNX export needs the 'onnx' package (and 'onnxruntime' to check it): "
                "pip install -e \".[export]\" (or pip install onnx onnxruntime)")


class EmbeddingModel(torch.nn.Module):
    """``images [N, 3, H, W] -> features [N, d]``: the method's eval forward on ``{"images": x}``."""

    def __init__(self, model: torch.nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.model({"images": images}).float()


def check_batch(cfg, batch: int = 4, images: Optional[list] = None) -> torch.Tensor:
    """A normalised ``[batch, 3, H, W]`` input: the given image files, else the first test items of
    the configured dataset when it exists, else seeded random normal values."""
    from ..data.transforms import build_transforms  # noqa: PLC0415

    transform = build_transforms(cfg, is_train=False)
    paths = list(images or [])
    if not paths:
        try:
            items = collect_items(["dataset:query"], cfg)
            paths = [s.frames[0] for s in items[:batch]]
        except Exception as e:  # no dataset here: random inputs are a valid check too
            logger.info("No test images for the check (%s): random normalised inputs", e)
    if paths:
        return torch.stack([transform(transform.load([p]))[0] for p in paths])
    h, w = (int(v) for v in cfg.INPUT.SIZE_TEST)
    return torch.randn(batch, 3, h, w, generator=torch.Generator().manual_seed(0))


def export_torchscript(module: EmbeddingModel, example: torch.Tensor, path: str) -> str:
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")            # tracer and TorchScript deprecation warnings
        traced = torch.jit.trace(module, example, check_trace=False)
        torch.jit.save(traced, path)
    return path


def export_onnx(module: EmbeddingModel, example: torch.Tensor, path: str, opset: int = 17) -> str:
    try:
        import onnx  # noqa: PLC0415
    except ImportError:
        raise AppError(ONNX_MISSING) from None
    kwargs = dict(input_names=["images"], output_names=["features"],
                  dynamic_axes={"images": {0: "batch"}, "features": {0: "batch"}},
                  opset_version=opset, do_constant_folding=True)
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:  # the TorchScript-based exporter needs no extra package (the dynamo one needs onnxscript)
            torch.onnx.export(module, (example,), path, dynamo=False, **kwargs)
        except TypeError:  # a torch without the ``dynamo`` argument
            torch.onnx.export(module, (example,), path, **kwargs)
    onnx.checker.check_model(onnx.load(path))
    return path


def _run_onnx(path: str, x: torch.Tensor) -> Optional[np.ndarray]:
    try:
        import onnxruntime as ort  # noqa: PLC0415
    except ImportError:
        return None
    session = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    return session.run(["features"], {"images": x.numpy()})[0]


def export(model, cfg, out_dir: str, formats=("torchscript", "onnx"), check_images=None,
           atol: float = 1e-4, opset: int = 17, batch: int = 4) -> Dict[str, object]:
    """Export ``model`` (module docstring) into ``out_dir``; returns ``export.json``'s content.
    Raises :class:`AppError` when an exported model differs from PyTorch by more than ``atol``."""
    from .search import input_description  # noqa: PLC0415

    os.makedirs(out_dir, exist_ok=True)
    model = model.to("cpu").eval()
    module = EmbeddingModel(model).eval()
    x = check_batch(cfg, batch, check_images)
    h, w = (int(v) for v in cfg.INPUT.SIZE_TEST)
    if tuple(x.shape[1:]) != (3, h, w):
        raise AppError(f"check images give inputs of shape {tuple(x.shape[1:])}, expected (3, {h}, {w})")
    example = x[:2] if x.shape[0] > 2 else x            # traced with 2, checked with the whole batch
    with torch.no_grad():
        reference = module(x).numpy()
    info: Dict[str, object] = {"meta_architecture": cfg.MODEL.META_ARCHITECTURE,
                               "input": {**input_description(cfg), "name": "images",
                                         "shape": ["batch", 3, h, w], "dtype": "float32"},
                               "output": {"name": "features", "shape": ["batch", int(reference.shape[1])],
                                          "dtype": "float32", "metric": cfg.TEST.METRIC},
                               "check": {"batch": int(x.shape[0]), "atol": atol}, "files": {}}
    failures = []
    if "torchscript" in formats:
        path = export_torchscript(module, example, os.path.join(out_dir, "model.ts"))
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            got = torch.jit.load(path)(x).numpy()
        diff = float(np.abs(got - reference).max())
        info["files"]["torchscript"] = os.path.basename(path)
        info["check"]["torchscript_max_abs_diff"] = diff
        print(f"TorchScript {path}: max abs difference to PyTorch {diff:.3e} on {x.shape[0]} images")
        if not diff <= atol:
            failures.append(f"TorchScript differs by {diff:.3e}")
    if "onnx" in formats:
        path = export_onnx(module, example, os.path.join(out_dir, "model.onnx"), opset)
        info["files"]["onnx"] = os.path.basename(path)
        got = _run_onnx(path, x)
        if got is None:
            print(f"ONNX {path}: written; onnxruntime is not installed, so it was not checked "
                  f"(pip install onnxruntime)")
            info["check"]["onnx_max_abs_diff"] = None
        else:
            diff = float(np.abs(got - reference).max())
            info["check"]["onnx_max_abs_diff"] = diff
            print(f"ONNX {path}: max abs difference to PyTorch {diff:.3e} on {x.shape[0]} images "
                  f"(onnxruntime)")
            if not diff <= atol:
                failures.append(f"ONNX differs by {diff:.3e}")
    with open(os.path.join(out_dir, "export.json"), "w", encoding="utf-8") as f:
        json.dump(info, f, indent=1)
    if failures:
        raise AppError("; ".join(failures) + f" (more than --atol {atol})")
    return info


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="unreidusl-export", description=__doc__.splitlines()[0])
    p.add_argument("--output", default="", metavar="DIR",
                   help="folder of model.ts / model.onnx (default: export/ next to the checkpoint)")
    p.add_argument("--format", nargs="+", default=["torchscript", "onnx"],
                   choices=["torchscript", "onnx"], help="what to write")
    p.add_argument("--check-images", nargs="+", default=None, metavar="IMG",
                   help="images of the check batch (default: the test set's first queries)")
    p.add_argument("--atol", type=float, default=1e-4, help="largest accepted feature difference")
    p.add_argument("--opset", type=int, default=17, help="ONNX opset")
    add_model_arguments(p)
    return p


def main(argv=None) -> int:
    from ..utils.logger import setup_logger  # noqa: PLC0415

    args, out_dir = parse_model_command(build_parser(), argv, "export")
    setup_logger()
    try:
        if "onnx" in args.format:
            try:
                import onnx  # noqa: F401, PLC0415
            except ImportError:
                raise AppError(ONNX_MISSING + "; or export TorchScript only: --format torchscript") \
                    from None
        cfg, model, _ = load_trained(args.checkpoint, args.config_file, args.opts)
        info = export(model, cfg, out_dir, tuple(args.format), args.check_images, args.atol, args.opset)
    except AppError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    inp = info["input"]
    print(f"Input 'images': float32 [batch, 3, {inp['input_size_hw'][0]}, {inp['input_size_hw'][1]}], "
          f"RGB / 255, mean {inp['pixel_mean']}, std {inp['pixel_std']}; output 'features': "
          f"[batch, {info['output']['shape'][1]}]. Details: {os.path.join(out_dir, 'export.json')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
