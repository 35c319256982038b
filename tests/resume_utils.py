"""Comparison of two final checkpoints for the exact-resume tests."""
import json

import torch

from unreidusl.utils.checkpoint import load_checkpoint

# Overrides of conftest.tiny_opts for the exact-resume tests: deterministic, 2 epochs x 3 iterations,
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
