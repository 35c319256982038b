"""Backbone → pooling → BN neck: the feature extractor every meta-architecture composes."""
import torch
import torch.nn.functional as F
from torch import nn

from ..backbones import build_backbone
from ..layers import PartPooling, ResizableModule, build_pooling


def _bn_neck(dim: int, enabled: bool) -> nn.Module:
    """BatchNorm1d with weight 1 and a frozen zero bias (BNNeck), or the identity."""
    if not enabled:
        return nn.Identity()
    neck = nn.BatchNorm1d(dim)
    nn.init.ones_(neck.weight)
    nn.init.zeros_(neck.bias)
    neck.bias.requires_grad_(False)
    return neck


class Encoder(nn.Module):
    """``frame_features`` gives pooled features f; ``neck`` maps them to BN features; ``embed`` =
    L2-normalised neck output; clips [B, T, 3, H, W] are averaged over T before the neck.

    With ``MODEL.HEADS.NUM_PARTS`` = P > 0 the same backbone map also feeds P horizontal stripes,
    each with its own pooling and BN neck (``branch_pooled`` / ``branch_neck``: the global branch
    first, then the parts)."""

    def __init__(self, cfg) -> None:
        super().__init__()
        self.backbone = build_backbone(cfg)
        self.feat_dim = self.backbone.out_channels
        heads = cfg.MODEL.HEADS
        self.pool = build_pooling(heads.POOLING, heads.GEM_P)
        self.neck = _bn_neck(self.feat_dim, heads.BNNECK)
        self.num_parts = heads.NUM_PARTS
        if self.num_parts < 0:
            raise ValueError(f"MODEL.HEADS.NUM_PARTS must be >= 0, got {self.num_parts}")
        self.part_pool = PartPooling(self.num_parts, heads.POOLING, heads.GEM_P) if self.num_parts else None
        self.part_necks = nn.ModuleList(_bn_neck(self.feat_dim, heads.BNNECK) for _ in range(self.num_parts))

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

    def branch_pooled(self, images: torch.Tensor) -> torch.Tensor:
        """[B, 1+P, d]: the global and the P part pooled features of images or clips (temporal mean),
        from one backbone pass (P = 0: the global one only)."""
        frames = images.flatten(0, 1) if images.dim() == 5 else images
        maps = self.backbone(frames)
        out = self.pool(maps).flatten(1).unsqueeze(1)
        if self.num_parts:
            out = torch.cat([out, self.part_pool(maps)], 1)
        return out.view(*images.shape[:2], *out.shape[1:]).mean(1) if images.dim() == 5 else out

    def branch_neck(self, pooled: torch.Tensor) -> torch.Tensor:
        """[B, 1+P, d] pooled → [B, 1+P, d] BN features, each branch through its own neck."""
        necks = [self.neck, *self.part_necks]
        return torch.stack([neck(pooled[:, b]) for b, neck in enumerate(necks)], 1)


class EncoderMethod(ResizableModule):
    """Base of the meta-architectures: ``device`` and the video-extraction pair ``frame_features`` /
    ``embed``, taken from the :class:`Encoder` named by ``test_encoder`` (the one whose features are
    evaluated: ``"encoder"``, or ``"teacher"`` for the mean-teacher methods)."""

    test_encoder = "encoder"

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    def frame_features(self, images: torch.Tensor) -> torch.Tensor:
        return getattr(self, self.test_encoder).frame_features(images)

    def embed(self, pooled: torch.Tensor) -> torch.Tensor:
        return getattr(self, self.test_encoder).embed(pooled)
