"""Classification losses on ``outputs["logits"]`` [B, C]."""
import torch
import torch.nn.functional as F
from torch import nn

from .build import LOSS_REGISTRY


def soft_cross_entropy(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """(1/B) Σ_b Σ_j −q_bj · log softmax(z_b)_j."""
    return -(target * F.log_softmax(logits, 1)).sum(1).mean()


@LOSS_REGISTRY.register()
class CrossEntropyLoss(nn.Module):
    """L = (1/B) Σ_i −log softmax(z_i)[y_i] on ``outputs["logits"]``."""

    def __init__(self, cfg=None) -> None:
        super().__init__()

    def forward(self, outputs, targets):
        return F.cross_entropy(outputs["logits"], targets)


@LOSS_REGISTRY.register()
class LabelSmoothingCrossEntropy(nn.Module):
    """q = (1−ε)·onehot(y) + ε/C, ε = MODEL.LOSSES.CE.EPSILON (ε = 0 gives the plain CE)."""

    def __init__(self, cfg) -> None:
        super().__init__()
        self.epsilon = cfg.MODEL.LOSSES.CE.EPSILON

    def forward(self, outputs, targets):
        logits = outputs["logits"]
        q = torch.full_like(logits, self.epsilon / logits.shape[1])
        q.scatter_add_(1, targets.unsqueeze(1), torch.full_like(q[:, :1], 1 - self.epsilon))
        return soft_cross_entropy(logits, q)


@LOSS_REGISTRY.register()
class RestrictedLabelSmoothingCrossEntropy(nn.Module):
    """RLSCE: q = (1−ε)·onehot(y) + (ε/K)·Σ_{n ∈ N_K(y)} onehot(n), with N_K(y) the K clusters nearest
    to y (``outputs["cluster_neighbors"]`` [C, K], y itself excluded). When fewer than K neighbours
    exist (C ≤ K), the mass ε is spread over the ones that do (rows padded with −1), so q sums to 1.

    With ``MODEL.LOSSES.RLSCE_MAP reference`` the map A is [C, K + 1] (self normally included) and
    q = (1−ε)·onehot(y) + (ε/K)·(onehot(y) XOR A[y]), as AuxUSLReID's released code: when y ∉ A[y]
    it gets 1 − ε + ε/K (q sums to more than 1), and when C ≤ K to less than 1."""

    def __init__(self, cfg) -> None:
        super().__init__()
        self.epsilon = cfg.MODEL.LOSSES.CE.EPSILON
        self.reference = cfg.MODEL.LOSSES.RLSCE_MAP == "reference"

    def forward(self, outputs, targets):
        logits, neighbors = outputs["logits"], outputs["cluster_neighbors"][targets]
        valid = neighbors >= 0
        if self.reference:
            k = neighbors.shape[1] - 1
            member = torch.zeros_like(logits).scatter_add_(1, neighbors.clamp(min=0), valid.to(logits.dtype)) > 0
            own = member.gather(1, targets.unsqueeze(1))
            member.scatter_(1, targets.unsqueeze(1), ~own)           # onehot(y) XOR A[y]
            q = member.to(logits.dtype) * (self.epsilon / max(k, 1))
            q.scatter_add_(1, targets.unsqueeze(1), torch.full_like(q[:, :1], 1 - self.epsilon))
            return soft_cross_entropy(logits, q)
        count = valid.sum(1, keepdim=True).clamp(min=1).to(logits.dtype)
        q = torch.zeros_like(logits)
        q.scatter_add_(1, neighbors.clamp(min=0), valid.to(logits.dtype) * self.epsilon / count)
        own = torch.where(valid.any(1, keepdim=True), 1 - self.epsilon, 1.0).to(logits.dtype)
        q.scatter_add_(1, targets.unsqueeze(1), own)
        return soft_cross_entropy(logits, q)


@LOSS_REGISTRY.register()
class SoftCrossEntropyLoss(nn.Module):
    """Mean-teacher soft CE: (1/B) Σ −softmax(z^t)·log softmax(z), teacher logits detached."""

    def __init__(self, cfg=None) -> None:
        super().__init__()

    def forward(self, outputs, targets):
        return soft_cross_entropy(outputs["logits"], outputs["teacher_logits"].detach().softmax(1))
