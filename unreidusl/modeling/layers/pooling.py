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


class PartPooling(nn.Module):
    """Horizontal stripes, each pooled by its own layer: stripe k holds rows [⌊kH/P⌋, ⌊(k+1)H/P⌋) of the
    map [B, C, H, W]; the output is [B, P, C] (NCPLR's two parts split at H//2)."""

    def __init__(self, num_parts: int, name: str, gem_p: float = 3.0) -> None:
        super().__init__()
        if num_parts < 1:
            raise ValueError(f"MODEL.HEADS.NUM_PARTS must be >= 1 for part pooling, got {num_parts}")
        self.pools = nn.ModuleList(build_pooling(name, gem_p) for _ in range(num_parts))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, parts = x.shape[2], len(self.pools)
        if h < parts:
            raise ValueError(f"The feature map has {h} rows, fewer than MODEL.HEADS.NUM_PARTS={parts}: "
                             f"use taller inputs (INPUT.SIZE_TRAIN/SIZE_TEST) or MODEL.BACKBONE.LAST_STRIDE 1")
        bounds = [k * h // parts for k in range(parts + 1)]
        return torch.stack([pool(x[:, :, a:b]).flatten(1)
                            for pool, a, b in zip(self.pools, bounds[:-1], bounds[1:])], 1)


def build_pooling(name: str, gem_p: float = 3.0) -> nn.Module:
    if name == "GeM":
        return GeneralizedMeanPooling(gem_p)
    if name == "avg":
        return nn.AdaptiveAvgPool2d(1)
    if name == "max":
        return nn.AdaptiveMaxPool2d(1)
    raise ValueError(f"MODEL.HEADS.POOLING must be one of GeM, avg, max; got {name!r}")
