"""Cluster Contrast: backbone → pooling → BN neck → L2, InfoNCE against a cluster memory
(docs/methods.md)."""
import numpy as np
import torch

from ..memory import build_memory
from .base import ReIDMethod
from .build import META_ARCH_REGISTRY
from .encoder import Encoder


def cluster_centroids(features: torch.Tensor, labels: np.ndarray) -> torch.Tensor:
    """Mean feature of every cluster 0..C-1 (label −1 = outlier is ignored)."""
    labels_t = torch.as_tensor(labels, dtype=torch.long)
    keep = labels_t >= 0
    num = int(labels_t[keep].max()) + 1 if keep.any() else 0
    sums = torch.zeros(num, features.shape[1], dtype=features.dtype)
    sums.index_add_(0, labels_t[keep], features[keep])
    return sums / torch.bincount(labels_t[keep], minlength=num).clamp(min=1).unsqueeze(1)


@META_ARCH_REGISTRY.register()
class ClusterContrast(ReIDMethod):
    """InfoNCE against a cluster memory; the memory is updated after the logits are taken."""

    default_losses = {"ClusterContrastLoss": 1.0}

    def __init__(self, cfg) -> None:
        super().__init__()
        self.encoder = Encoder(cfg)
        self.memory = build_memory(cfg, self.encoder.feat_dim)
        self.build_losses(cfg)

    def extract(self, images: torch.Tensor) -> torch.Tensor:
        """Images [B, 3, H, W] or clips [B, T, 3, H, W] → unit features."""
        return self.encoder.embed(self.encoder.pooled(images))

    per_sample_grad_keys = ("pooled",)

    def per_sample(self, images: torch.Tensor):
        """Per-sample outputs, computable chunk by chunk: pooled backbone features."""
        return {"pooled": self.encoder.pooled(images)}

    def batch_losses(self, per_sample, targets: torch.Tensor):
        """Neck, memory logits and losses over the whole batch; then the memory update."""
        features = self.encoder.embed(per_sample["pooled"])
        outputs = {"features": features, "logits": self.memory.logits(features)}
        losses = self.weighted_losses(outputs, targets)
        self.memory.update(features.detach(), targets)
        return losses

    def forward(self, batch):
        images = batch["images"].to(self.device, non_blocking=True)
        if not self.training:
            return self.extract(images)
        targets = batch["targets"].to(self.device, non_blocking=True)
        # further batch fields a subclass's batch_losses takes (e.g. ThreeC's camera ids)
        extra = {k: batch[k].to(self.device, non_blocking=True) for k in self.batch_keys}
        return self.float32_batch_losses(self.per_sample(images), targets, **extra)

    @torch.no_grad()
    def reset_pseudo_labels(self, result) -> None:
        """Memory ← the cluster centroids of the clustering features."""
        self.memory.reset(cluster_centroids(result.features, result.labels))
