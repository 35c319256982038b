"""Classifier whose rows are the current clusters (re-initialised from centroids at each clustering)."""
import torch
from torch import nn

from .resizable import ResizableModule


class ClusterClassifier(ResizableModule):
    """Bias-free linear layer ``z = x · Wᵀ`` whose row count follows the number of clusters."""

    resizable = ("weight",)

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(0, dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.mm(self.weight.t())

