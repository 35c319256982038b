"""CDSM's hybrid loss over the diversity memory."""
import torch
import torch.nn.functional as F
from torch import nn

from .build import LOSS_REGISTRY


def center_margin_loss(logits: torch.Tensor, targets: torch.Tensor, num_marginal: int, hard_weight: float,
                       epsilon: float = 0.0) -> torch.Tensor:
    """``logits`` [B, (M+1)·K] = x·Mᵀ/τ against the diversity memory (block 0 central, blocks 1..M
    marginal). L_center = CE(z⁰, y); the margin logit of class c is the mean over its marginal
    proxies for c = y (P_c) and their max for c ≠ y (N_c), L_margin = CE(ℓ, y);
    L = (1 − w)·L_center + w·L_margin; both CEs against q = (1−ε)·onehot(y) + ε/K (ε = 0: plain CE;
    the code fixes ε at 0.1 whatever ``--smooth`` says)."""
    b, cols = logits.shape
    if cols % (num_marginal + 1):
        raise ValueError(f"CenterMarginLoss: {cols} memory logits do not split into 1 + MODEL.MEMORY.NUM_MARGINAL="
                         f"{num_marginal} blocks; use it with MODEL.MEMORY.NAME DiversityMemory")
    k = cols // (num_marginal + 1)
    center = logits[:, :k]
    marginal = logits[:, k:].view(b, num_marginal, k)
    own = F.one_hot(targets, k).bool()
    margin = torch.where(own, marginal.mean(1), marginal.max(1).values)
    return ((1 - hard_weight) * F.cross_entropy(center, targets, label_smoothing=epsilon)
            + hard_weight * F.cross_entropy(margin, targets, label_smoothing=epsilon))


@LOSS_REGISTRY.register()
class CenterMarginLoss(nn.Module):
    """``center_margin_loss`` with M = ``MODEL.MEMORY.NUM_MARGINAL``, w = ``MODEL.LOSSES.CENTER_MARGIN.
    HARD_WEIGHT`` and label smoothing ε = ``MODEL.LOSSES.CENTER_MARGIN.EPSILON``."""

    def __init__(self, cfg) -> None:
        super().__init__()
        c = cfg.MODEL.LOSSES.CENTER_MARGIN
        self.num_marginal, self.hard_weight, self.epsilon = cfg.MODEL.MEMORY.NUM_MARGINAL, c.HARD_WEIGHT, c.EPSILON
        if not 0.0 <= self.hard_weight <= 1.0:
            raise ValueError(f"MODEL.LOSSES.CENTER_MARGIN.HARD_WEIGHT must be in [0, 1], got {self.hard_weight}")
        if not 0.0 <= self.epsilon < 1.0:
            raise ValueError(f"MODEL.LOSSES.CENTER_MARGIN.EPSILON must be in [0, 1), got {self.epsilon}")

    def forward(self, outputs, targets):
        return center_margin_loss(outputs["logits"], targets, self.num_marginal, self.hard_weight, self.epsilon)
