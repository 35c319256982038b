import torch.nn.functional as F
from torch import nn

from .build import LOSS_REGISTRY


@LOSS_REGISTRY.register()
class ClusterContrastLoss(nn.Module):
    """L = (1/B) Σ_i −log softmax(x_i·Mᵀ/τ)[y_i]  (Cluster Contrast, InfoNCE over all C centroids)."""

    def __init__(self, cfg=None) -> None:
        super().__init__()

    def forward(self, outputs, targets):
        return F.cross_entropy(outputs["logits"], targets)
