"""Global pooling layers."""
import torch
import torch.nn.functional as F
from torch import nn


class GeneralizedMeanPooling(nn.Module):
    """GeM: y = (mean_{hw} clamp(x, eps)^p)^(1/p) with a learnable scalar p (init ``p``)."""

    def __init__(self, p: float = 3.0, eps: float = 1e-6) -> None:
        super().__init__()
        self.p = nn.Parameter(torch.tensor(float(p)))
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.adaptive_avg_pool2d(x.clamp(min=self.eps).pow(self.p), 1).pow(1.0 / self.p)


def build_pooling(name: str, gem_p: float = 3.0) -> nn.Module:
    if name == "GeM":
        return GeneralizedMeanPooling(gem_p)
    if name == "avg":
        return nn.AdaptiveAvgPool2d(1)
    if name == "max":
        return nn.AdaptiveMaxPool2d(1)
    raise ValueError(f"MODEL.HEADS.POOLING must be one of GeM, avg, max; got {name!r}")
