from typing import Dict, Tuple

from torch import nn

from ...utils.registry import Registry

LOSS_REGISTRY = Registry("LOSS")
LOSS_REGISTRY.__doc__ = """Losses: called as ``obj(cfg)``; return a callable
``loss(outputs: dict, targets: Tensor) -> scalar Tensor``. ``outputs`` holds at least
``features`` (L2-normalised [B,d]) and, for memory-based methods, ``logits`` [B,C]."""


def build_losses(cfg) -> Dict[str, Tuple[nn.Module, float]]:
    names, weights = list(cfg.MODEL.LOSSES.NAME), list(cfg.MODEL.LOSSES.WEIGHTS)
    if not names:
        raise ValueError("MODEL.LOSSES.NAME is empty: name at least one loss")
    if weights and len(weights) != len(names):
        raise ValueError(
            f"MODEL.LOSSES.WEIGHTS has {len(weights)} entries for {len(names)} losses in "
            f"MODEL.LOSSES.NAME={names}; give one weight per loss or leave it empty."
        )
    weights = weights or [1.0] * len(names)
    return {n: (LOSS_REGISTRY.get(n)(cfg), float(w)) for n, w in zip(names, weights)}
