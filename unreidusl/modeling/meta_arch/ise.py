"""ISE: Implicit Sample Extension (docs/methods.md): Cluster Contrast whose
batch is extended by label-preserving support samples interpolated towards the nearest other clusters."""
import math

import torch
import torch.nn.functional as F

from .build import META_ARCH_REGISTRY
from .cluster_contrast import ClusterContrast


def progressive_supports(features: torch.Tensor, targets: torch.Tensor, centroids: torch.Tensor,
                         lam: float, topk: int):
    """Progressive linear interpolation: for each of the ``topk`` clusters n_i^k nearest to
    f_i by cosine (own cluster excluded, both detached), f~_i^k = normalize(f_i + λ·(c_n − c_{y_i})).

    Returns supports [K·B, d] (k-major: all samples for the nearest cluster, then the next) and their
    labels (y repeated K times). K = min(topk, C − 1), so a memory of one cluster gives no support.
    The gradient flows into ``features``; the centroids are constants."""
    k = min(topk, centroids.shape[0] - 1)
    if k <= 0:
        return features[:0], targets[:0]
    sim = features.detach().mm(centroids.t())
    sim.scatter_(1, targets.unsqueeze(1), float("-inf"))
    nearest = sim.topk(k, dim=1).indices.t()                                # [K, B]
    shift = centroids[nearest] - centroids[targets].unsqueeze(0)             # [K, B, d]
    supports = F.normalize(features.unsqueeze(0) + lam * shift, dim=2)
    return supports.flatten(0, 1), targets.repeat(k)


@META_ARCH_REGISTRY.register()
class ISE(ClusterContrast):
    """L = Σ_n w_n·L_n(real ∪ supports): ClusterContrastLoss averages InfoNCE over the B real and the
    K·B support samples; LabelPreservingLoss takes the real samples as anchors and the
    supports as keys. λ(t) = LAMBDA_SCALE·LAMBDA_BASE·ln(1 + (e − 1)·t/T) grows with the
    training progress t/T (``set_progress``, called before every step by the trainer)."""

    default_losses = {"ClusterContrastLoss": 1.0, "LabelPreservingLoss": 0.1}
    tracks_progress = True

    def __init__(self, cfg) -> None:
        super().__init__(cfg)
        c = cfg.MODEL.ISE
        if c.TOPK < 1:
            raise ValueError(f"MODEL.ISE.TOPK must be >= 1, got {c.TOPK}")
        self.topk, self.lambda_base, self.lambda_scale = c.TOPK, c.LAMBDA_BASE, c.LAMBDA_SCALE
        self.update_with_supports = c.UPDATE_WITH_SUPPORTS
        self.progress = 0.0

    def set_progress(self, iteration: int, total: int) -> None:
        """t / T, the fraction of all training iterations done."""
        self.progress = min(max(iteration / max(total, 1), 0.0), 1.0)

    @property
    def support_lambda(self) -> float:
        """λ(t) = scale · β · ln(1 + (e − 1)·t/T): 0 at the start, scale·β at the end."""
        return self.lambda_scale * self.lambda_base * math.log1p((math.e - 1.0) * self.progress)

    def batch_losses(self, per_sample, targets: torch.Tensor):
        features = self.encoder.embed(per_sample["pooled"])
        supports, support_targets = progressive_supports(features, targets, self.memory.features,
                                                         self.support_lambda, self.topk)
        extended = torch.cat([features, supports])
        extended_targets = torch.cat([targets, support_targets])
        outputs = {"features": extended, "logits": self.memory.logits(extended), "num_real": len(targets)}
        losses = self.weighted_losses(outputs, extended_targets)
        if self.update_with_supports:
            self.memory.update(extended.detach(), extended_targets)
        else:
            self.memory.update(features.detach(), targets)
        return losses
