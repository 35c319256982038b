"""Shared non-fixture helpers of the test suite (fixtures live in tests/conftest.py).

Every test imports them the same way, at the top of the file::

    from helpers import ROOT, tiny_opts, main

tests/ is on ``sys.path`` (tests/conftest.py puts it there), whichever folder or file is run.
"""
import functools
import importlib.util
import json
import os
from types import ModuleType

import torch

from unreidusl.utils.checkpoint import load_checkpoint

# The repository root (holds unreidusl/, tools/, configs/, docs/, tests/).
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def tiny_opts(root, output_dir, **extra):
    """Command-line overrides for a seconds-long CPU run on the tiny synthetic world."""
    opts = {
        "DATASETS.ROOT": root,
        "DATASETS.TRAIN": "SyntheticMarket1501",
        "DATASETS.TEST": "SyntheticMarket1501",
        "DATASETS.SYNTHETIC.PRESET": "tiny",
        "MODEL.BACKBONE.DEPTH": 18,
        "MODEL.BACKBONE.LAST_STRIDE": 2,
        "INPUT.SIZE_TRAIN": "[64,32]",
        "INPUT.SIZE_TEST": "[64,32]",
        "DATALOADER.NUM_WORKERS": 0,
        "DATALOADER.NUM_INSTANCES": 4,
        "SOLVER.IMS_PER_BATCH": 16,
        "SOLVER.ITERS_PER_EPOCH": 2,
        "SOLVER.MAX_EPOCHS": 2,
        "CLUSTER.EPS": 0.7,
        "CLUSTER.K1": 10,
        "CLUSTER.K2": 3,
        "CLUSTER.MIN_SAMPLES": 2,
        "TEST.EVAL_AT_START": False,
        "LOG.TENSORBOARD": False,
        "OUTPUT_DIR": str(output_dir),
    }
    opts.update(extra)
    flat = []
    for k, v in opts.items():
        flat += [k, str(v)]
    return flat


@functools.lru_cache(maxsize=None)
def load_tool(name: str) -> ModuleType:
    """``tools/<name>.py`` imported as a module (once per process: a tool may register components)."""
    path = os.path.join(ROOT, "tools", f"{name}.py")
    spec = importlib.util.spec_from_file_location(f"unreidusl_tools_{name}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def main(argv=None) -> int:
    """``tools/main.py``'s ``main(argv)``: train or evaluate in this process; returns the exit code.
    (tools/main.py is imported at the first call, so that a test file that does not run it still
    collects while that script is broken.)"""
    return load_tool("main").main(argv)


# --- exact resume ----------------------------------------------------------------------------------

# Overrides of tiny_opts for the exact-resume tests: deterministic, 2 epochs x 3 iterations,
# one evaluation at the end (the final metrics).
COMMON = {"DETERMINISTIC": True, "SOLVER.ITERS_PER_EPOCH": 3, "TEST.EVAL_PERIOD": 2, "LOG.PERIOD": 1,
          "CLUSTER.SIZE_HISTOGRAM": False}


def _same_tensors(a: dict, b: dict, what: str) -> None:
    assert a.keys() == b.keys(), what
    for k in a:
        if isinstance(a[k], dict):
            _same_tensors(a[k], b[k], f"{what}.{k}")
        elif isinstance(a[k], torch.Tensor):
            assert torch.equal(a[k], b[k]), f"{what}.{k} differs"
        else:
            assert a[k] == b[k], f"{what}.{k}: {a[k]} != {b[k]}"


def assert_same_final_state(reference: str, resumed: str) -> None:
    """Model, optimiser, scheduler, pseudo-labels, position and the evaluation history (the final
    metrics) of the two checkpoints are identical, bit for bit."""
    a, b = load_checkpoint(reference), load_checkpoint(resumed)
    assert (a["epoch"], a["iter"]) == (b["epoch"], b["iter"])
    _same_tensors(a["model"], b["model"], "model")
    _same_tensors(a["optimizer"], b["optimizer"], "optimizer")
    assert a["scheduler"] == b["scheduler"]
    assert torch.equal(a["hooks"]["PseudoLabelHook"]["labels"], b["hooks"]["PseudoLabelHook"]["labels"])
    history = [json.loads(c["hooks"]["EvalHook"]["history"]) for c in (a, b)]
    assert history[0] == history[1] and "mAP" in history[0][-1]


def flatten_cfg(node, prefix=""):
    """{"A.B.C": value} of a (nested) config node."""
    out = {}
    for k, v in node.items():
        if hasattr(v, "items"):
            out.update(flatten_cfg(v, f"{prefix}{k}."))
        else:
            out[prefix + k] = v
    return out


def dense_distance(dist):
    """Dense float copy of a sparse clustering distance (an unstored entry means D = 1)."""
    import numpy as np

    out = np.ones(dist.shape, np.float32)
    coo = dist.tocoo()
    out[coo.row, coo.col] = coo.data
    return out
