from typing import Dict, Tuple

from torch import nn

from ...utils.registry import Registry

LOSS_REGISTRY = Registry("LOSS")
LOSS_REGISTRY.__doc__ = """Losses: called as ``obj(cfg)``; return a callable
``loss(outputs: dict, targets: Tensor) -> scalar Tensor``. ``outputs`` is what the method puts
there (docs/meta_arch.md): ``features`` (L2-normalised [B,d]) and, for memory-based methods,
``logits`` [B,C]; each loss names the entries it reads."""


def build_loss_set(cfg, defaults: Dict[str, float]) -> Tuple[nn.ModuleDict, Dict[str, float]]:
    """The losses of MODEL.LOSSES.NAME with MODEL.LOSSES.WEIGHTS (1.0 each when empty), or, when
    NAME is empty, the method's ``defaults`` {name: weight}: a ModuleDict (in that order) and the
    weights."""
    names, weights = list(cfg.MODEL.LOSSES.NAME), list(cfg.MODEL.LOSSES.WEIGHTS)
    if not names:
        if not defaults:
            raise ValueError("MODEL.LOSSES.NAME is empty and the method has no default losses: name at "
                             "least one loss")
        if weights:
            raise ValueError("MODEL.LOSSES.WEIGHTS is set but MODEL.LOSSES.NAME is empty: name the losses "
                             "the weights belong to")
        names, weights = list(defaults), list(defaults.values())
    if weights and len(weights) != len(names):
        raise ValueError(
            f"MODEL.LOSSES.WEIGHTS has {len(weights)} entries for {len(names)} losses in "
            f"MODEL.LOSSES.NAME={names}; give one weight per loss or leave it empty."
        )
    if len(set(names)) != len(names):
        raise ValueError(f"MODEL.LOSSES.NAME={names} names a loss twice")
    weights = weights or [1.0] * len(names)
    modules = nn.ModuleDict({n: LOSS_REGISTRY.get(n)(cfg) for n in names})
    return modules, {n: float(w) for n, w in zip(names, weights)}
