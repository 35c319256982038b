"""Mean-teacher pieces shared by the meta-architectures that keep an EMA copy of their encoder."""
import copy

import torch
from torch import nn


def frozen_copy(module: nn.Module) -> nn.Module:
    """A deep copy whose parameters take no gradient (the teacher)."""
    teacher = copy.deepcopy(module)
    for p in teacher.parameters():
        p.requires_grad_(False)
    return teacher


@torch.no_grad()
def ema_update_(teacher: nn.Module, student: nn.Module, global_step: int, alpha_max: float,
                buffers: bool = False) -> None:
    """θ_t ← α·θ_t + (1−α)·θ_s with α = min(1 − 1/(g+1), alpha_max), g = global step; with
    ``buffers`` the floating BN buffers are averaged too (integer ones copied)."""
    alpha = min(1.0 - 1.0 / (global_step + 1), alpha_max)
    for t, s in zip(teacher.parameters(), student.parameters()):
        t.mul_(alpha).add_(s.detach(), alpha=1 - alpha)
    if buffers:
        for t, s in zip(teacher.buffers(), student.buffers()):
            if t.dtype.is_floating_point:
                t.mul_(alpha).add_(s, alpha=1 - alpha)
            else:
                t.copy_(s)
