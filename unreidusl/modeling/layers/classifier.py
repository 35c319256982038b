"""Classifier whose rows are the current clusters (re-initialised from centroids at each clustering)."""
import torch
from torch import nn

from .resizable import resize_like_checkpoint


class ClusterClassifier(nn.Module):
    """Bias-free linear layer ``z = x · Wᵀ`` whose row count follows the number of clusters."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(0, dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.mm(self.weight.t())

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        resize_like_checkpoint(self, state_dict, prefix, ["weight"])
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)
