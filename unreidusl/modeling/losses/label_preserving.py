"""ISE's label-preserving (LP) loss."""
import torch
from torch import nn

from .build import LOSS_REGISTRY


def label_preserving_loss(anchors: torch.Tensor, anchor_targets: torch.Tensor, supports: torch.Tensor,
                          support_targets: torch.Tensor, temp: float) -> torch.Tensor:
    """Real samples are the anchors, support samples the keys; with E_ij = exp(<f_i, f~_j>/τ):

    * p_i = min_{j: y_j = y_i} E_ij, the hardest positive support (its own included);
    * n_i^c = max_{j: y_j = c} E_ij for every other identity c among the supports (the hardest
      negative support per identity, grouped by label rather than by position in the batch);
    * L = (1/B) Σ_i −log(p_i / (p_i + Σ_c n_i^c + 1e-6) + 1e-6).

    Anchors without a positive support are left out; with none left the loss is 0."""
    valid = (anchor_targets.unsqueeze(1) == support_targets.unsqueeze(0)).any(1)
    if not valid.any():
        return anchors.sum() * 0.0
    anchors, anchor_targets = anchors[valid], anchor_targets[valid]
    e = torch.exp(anchors.mm(supports.t()) / temp)                          # [B, S]
    classes, column_class = torch.unique(support_targets, return_inverse=True)
    member = column_class.unsqueeze(0) == torch.arange(len(classes), device=e.device).unsqueeze(1)  # [C, S]
    positive = support_targets.unsqueeze(0) == anchor_targets.unsqueeze(1)  # [B, S]
    p = e.masked_fill(~positive, float("inf")).min(1).values
    hardest = e.unsqueeze(1).masked_fill(~member.unsqueeze(0), 0.0).max(2).values  # [B, C]
    own = anchor_targets.unsqueeze(1) == classes.unsqueeze(0)               # [B, C]
    negatives = hardest.masked_fill(own, 0.0).sum(1)
    return -torch.log(p / (p + negatives + 1e-6) + 1e-6).mean()


@LOSS_REGISTRY.register()
class LabelPreservingLoss(nn.Module):
    """``label_preserving_loss`` at τ = ``MODEL.LOSSES.LP.TEMP``. ``outputs["features"]`` holds the
    ``outputs["num_real"]`` real samples followed by their support samples; ``targets`` likewise."""

    def __init__(self, cfg) -> None:
        super().__init__()
        self.temp = cfg.MODEL.LOSSES.LP.TEMP
        if self.temp <= 0:
            raise ValueError(f"MODEL.LOSSES.LP.TEMP must be > 0, got {self.temp}")

    def forward(self, outputs, targets):
        if "num_real" not in outputs:
            raise KeyError("LabelPreservingLoss needs support samples: use it with MODEL.META_ARCHITECTURE ISE")
        b, f = outputs["num_real"], outputs["features"]
        return label_preserving_loss(f[:b], targets[:b], f[b:], targets[b:], self.temp)
