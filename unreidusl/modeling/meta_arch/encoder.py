"""Backbone → pooling → BN neck: the feature extractor every meta-architecture composes."""
import torch
import torch.nn.functional as F
from torch import nn

from ..backbones import build_backbone
from ..layers import build_pooling


class Encoder(nn.Module):
    """``frame_features`` gives pooled features f; ``neck`` maps them to BN features; ``embed`` =
    L2-normalised neck output; clips [B, T, 3, H, W] are averaged over T before the neck."""

    def __init__(self, cfg) -> None:
        super().__init__()
        self.backbone = build_backbone(cfg)
        self.feat_dim = self.backbone.out_channels
        self.pool = build_pooling(cfg.MODEL.HEADS.POOLING, cfg.MODEL.HEADS.GEM_P)
        if cfg.MODEL.HEADS.BNNECK:
            self.neck = nn.BatchNorm1d(self.feat_dim)
            nn.init.ones_(self.neck.weight)
            nn.init.zeros_(self.neck.bias)
            self.neck.bias.requires_grad_(False)
        else:
            self.neck = nn.Identity()

    def frame_features(self, images: torch.Tensor) -> torch.Tensor:
        """Pooled backbone features [N, d] of frames [N, 3, H, W] (before the neck)."""
        return self.pool(self.backbone(images)).flatten(1)

    def pooled(self, images: torch.Tensor) -> torch.Tensor:
        """Pooled features of images [B, 3, H, W] or clips [B, T, 3, H, W] (temporal mean)."""
        if images.dim() == 5:
            b, t = images.shape[:2]
            return self.frame_features(images.flatten(0, 1)).view(b, t, -1).mean(1)
        return self.frame_features(images)

    def embed(self, pooled: torch.Tensor) -> torch.Tensor:
        """Neck + L2 normalisation of pooled (for a tracklet: temporally averaged) features."""
        return F.normalize(self.neck(pooled), dim=1)
