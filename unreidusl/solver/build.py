"""Optimiser and epoch-level LR scheduler from ``cfg.SOLVER``."""
import bisect

import torch

_OPTIMIZERS = ("Adam", "AdamW", "SGD")
_SCHEDULERS = ("StepLR", "MultiStepLR", "CosineLR", "ConstantLR")


def build_optimizer(cfg, model: torch.nn.Module) -> torch.optim.Optimizer:
    s = cfg.SOLVER
    params = [p for p in model.parameters() if p.requires_grad]
    if s.OPTIMIZER == "Adam":
        return torch.optim.Adam(params, lr=s.BASE_LR, weight_decay=s.WEIGHT_DECAY)
    if s.OPTIMIZER == "AdamW":
        return torch.optim.AdamW(params, lr=s.BASE_LR, weight_decay=s.WEIGHT_DECAY)
    if s.OPTIMIZER == "SGD":
        return torch.optim.SGD(params, lr=s.BASE_LR, momentum=s.MOMENTUM, weight_decay=s.WEIGHT_DECAY)
    raise ValueError(f"SOLVER.OPTIMIZER must be one of {_OPTIMIZERS}, got {s.OPTIMIZER!r}")


def build_lr_scheduler(cfg, optimizer: torch.optim.Optimizer):
    """Stepped once per epoch."""
    s = cfg.SOLVER
    if s.WARMUP_EPOCHS > 0:
        return _warmup_step_scheduler(s, optimizer)
    if s.SCHED == "StepLR":
        if len(s.STEPS) != 1:
            raise ValueError(f"SOLVER.SCHED StepLR needs one step size in SOLVER.STEPS, got {s.STEPS}")
        return torch.optim.lr_scheduler.StepLR(optimizer, step_size=s.STEPS[0], gamma=s.GAMMA)
    if s.SCHED == "MultiStepLR":
        return torch.optim.lr_scheduler.MultiStepLR(optimizer, milestones=list(s.STEPS), gamma=s.GAMMA)
    if s.SCHED == "CosineLR":
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=s.MAX_EPOCHS)
    if s.SCHED == "ConstantLR":
        return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda epoch: 1.0)
    raise ValueError(f"SOLVER.SCHED must be one of {_SCHEDULERS}, got {s.SCHED!r}")


def _warmup_step_scheduler(s, optimizer):
    """fast-reid's WarmupMultiStepLR as 3C uses it: lr(e) = BASE_LR · w(e) ·
    GAMMA^(decays before or at e), w(e) = f + (1 − f)·e/W for e < W = WARMUP_EPOCHS (f = WARMUP_FACTOR),
    else 1; decays every STEPS[0] epochs (StepLR) or at each epoch in STEPS (MultiStepLR)."""
    if s.SCHED not in ("StepLR", "MultiStepLR"):
        raise ValueError(f"SOLVER.WARMUP_EPOCHS > 0 works with SOLVER.SCHED StepLR or MultiStepLR, got {s.SCHED!r}")
    steps, warm, f = sorted(s.STEPS), s.WARMUP_EPOCHS, s.WARMUP_FACTOR

    def factor(epoch: int) -> float:
        decays = epoch // steps[0] if s.SCHED == "StepLR" else bisect.bisect_right(steps, epoch)
        ramp = f + (1 - f) * epoch / warm if epoch < warm else 1.0
        return ramp * s.GAMMA ** decays

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
