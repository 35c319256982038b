"""Backbone → pooling → BN neck: the feature extractor every meta-architecture composes."""
import torch
import torch.nn.functional as F
from torch import nn

from ..backbones import build_backbone
from ..layers import PartPooling, build_pooling


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

    With ``MODEL.HEADS.FRAME_BN`` (AuxUSLReID's released video model) the neck is applied to every
    frame instead, and a clip's features are means over its T frames of per-frame quantities:
    BN feature ``mean_t BN(x_t)`` (:meth:`bn_features`), test feature ``mean_t normalize(BN(x_t))``
    (:meth:`test_features`, not re-normalised); the pooled feature ``f = mean_t x_t`` is the same
    either way.  For single images both modes coincide.

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
        self.frame_bn = heads.FRAME_BN
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
        frames = self.frames_pooled(images)
        return frames.mean(1) if frames.dim() == 3 else frames

    def frames_pooled(self, images: torch.Tensor) -> torch.Tensor:
        """Pooled features per frame: [B, T, d] for clips [B, T, 3, H, W], [B, d] for images."""
        if images.dim() == 5:
            b, t = images.shape[:2]
            return self.frame_features(images.flatten(0, 1)).view(b, t, -1)
        return self.frame_features(images)

    def bn_features(self, frames: torch.Tensor) -> torch.Tensor:
        """BN features [B, d] of :meth:`frames_pooled` output: ``BN(mean_t x_t)``, or with
        FRAME_BN ``mean_t BN(x_t)`` (the BatchNorm batch is then the B·T frames)."""
        if frames.dim() == 2:
            return self.neck(frames)
        if not self.frame_bn:
            return self.neck(frames.mean(1))
        b, t = frames.shape[:2]
        return self.neck(frames.flatten(0, 1)).view(b, t, -1).mean(1)

    def embed(self, pooled: torch.Tensor) -> torch.Tensor:
        """Neck + L2 normalisation of pooled (for a tracklet: temporally averaged) features."""
        return F.normalize(self.neck(pooled), dim=1)

    def test_frame_features(self, images: torch.Tensor) -> torch.Tensor:
        """Per-frame features whose mean over a tracklet :meth:`test_embed` turns into its test
        feature: pooled features, or with FRAME_BN the unit BN features of the frames."""
        x = self.frame_features(images)
        return F.normalize(self.neck(x), dim=1) if self.frame_bn else x

    def test_embed(self, frame_mean: torch.Tensor) -> torch.Tensor:
        """Test feature from the mean of :meth:`test_frame_features` over a tracklet's frames."""
        return frame_mean if self.frame_bn else self.embed(frame_mean)

    def test_features(self, images: torch.Tensor) -> torch.Tensor:
        """Test features of images or clips (the temporal mean runs over the clip's T frames)."""
        if images.dim() == 5:
            b, t = images.shape[:2]
            frames = self.test_frame_features(images.flatten(0, 1)).view(b, t, -1)
            return self.test_embed(frames.mean(1))
        return self.test_embed(self.test_frame_features(images))

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


class PreBNFeatures(nn.Module):
    """Eval-mode extractor of an encoder's raw pooled features ``f = mean_t x_t`` (before the BN
    neck, not normalised): the clustering features of ``CLUSTER.FEATURE pre_bn``."""

    def __init__(self, encoder: Encoder) -> None:
        super().__init__()
        self.encoder = encoder

    def forward(self, batch) -> torch.Tensor:
        images = batch["images"].to(next(self.encoder.parameters()).device, non_blocking=True)
        return self.encoder.pooled(images)

    def frame_features(self, images: torch.Tensor) -> torch.Tensor:
        return self.encoder.frame_features(images)

    def embed(self, frame_mean: torch.Tensor) -> torch.Tensor:
        return frame_mean
