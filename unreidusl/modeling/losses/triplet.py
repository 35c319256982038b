"""Batch-hard triplet losses."""
from typing import Tuple

import torch
import torch.nn.functional as F
from torch import nn

from .build import LOSS_REGISTRY


def euclidean_dist(x: torch.Tensor) -> torch.Tensor:
    """d_ij = sqrt(max(||x_i||² + ||x_j||² − 2 x_i·x_j, 1e-12))."""
    sq = x.pow(2).sum(1, keepdim=True)
    return (sq + sq.t() - 2 * x.mm(x.t())).clamp(min=1e-12).sqrt()


def hard_example_mining(dist: torch.Tensor, targets: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
    """Indices of the hardest positive (max distance, self included) and hardest negative
    (min distance) of every anchor. A batch row without a negative raises a ValueError."""
    same = targets.unsqueeze(0) == targets.unsqueeze(1)
    if same.all(1).any():
        raise ValueError("Batch-hard mining needs every anchor to have a negative in the batch: "
                         "use at least two pseudo-identities per batch (SOLVER.IMS_PER_BATCH > NUM_INSTANCES)")
    big = torch.finfo(dist.dtype).max
    pos = dist.masked_fill(~same, -big).argmax(1)
    neg = dist.masked_fill(same, big).argmin(1)
    return pos, neg


def _ap_an(features: torch.Tensor, targets: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
    dist = euclidean_dist(features)
    pos, neg = hard_example_mining(dist.detach(), targets)
    rows = torch.arange(len(targets), device=features.device)
    return dist[rows, pos], dist[rows, neg]


@LOSS_REGISTRY.register()
class SoftMarginTripletLoss(nn.Module):
    """L = mean softplus(d_ap − d_an) on ``outputs["triplet_features"]`` (else ``features``)."""

    def __init__(self, cfg=None) -> None:
        super().__init__()

    def forward(self, outputs, targets):
        ap, an = _ap_an(outputs.get("triplet_features", outputs["features"]), targets)
        return F.softplus(ap - an).mean()


@LOSS_REGISTRY.register()
class WeightAdaptiveTripletLoss(nn.Module):
    """WATL: t = d_ap − d_an + m; L = (1/B) Σ w(t)·t with w = exp(λ·t) for t > 0 and 0 otherwise.
    w is not detached (gradient e^{λt}(1 + λt)); λ < 0 down-weights large, probably noisy violations.
    m = MODEL.LOSSES.TRI_MARGIN, λ = MODEL.LOSSES.TRI_LAMBDA."""

    def __init__(self, cfg) -> None:
        super().__init__()
        self.margin, self.lam = cfg.MODEL.LOSSES.TRI_MARGIN, cfg.MODEL.LOSSES.TRI_LAMBDA

    def forward(self, outputs, targets):
        ap, an = _ap_an(outputs.get("triplet_features", outputs["features"]), targets)
        t = ap - an + self.margin
        active = t > 0
        return torch.where(active, torch.exp(self.lam * t) * t, torch.zeros_like(t)).mean()


@LOSS_REGISTRY.register()
class SoftTripletLoss(nn.Module):
    """Mean-teacher soft triplet: hardest pairs mined on the student; target = softmax([d^t_ap, d^t_an])
    of the teacher's distances at the same pairs (detached); L = mean −target·log_softmax([d_ap, d_an])."""

    def __init__(self, cfg=None) -> None:
        super().__init__()

    def forward(self, outputs, targets):
        student = outputs.get("triplet_features", outputs["features"])
        dist = euclidean_dist(student)
        pos, neg = hard_example_mining(dist.detach(), targets)
        rows = torch.arange(len(targets), device=student.device)
        pair = torch.stack([dist[rows, pos], dist[rows, neg]], 1)
        with torch.no_grad():
            tdist = euclidean_dist(outputs["teacher_triplet_features"])
            target = torch.stack([tdist[rows, pos], tdist[rows, neg]], 1).softmax(1)
        return (-target * F.log_softmax(pair, 1)).sum(1).mean()
