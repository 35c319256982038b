"""3C's camera information entropy (CIE) weighting of the memory cross-entropy."""
import torch
import torch.nn.functional as F
from torch import nn

from .build import LOSS_REGISTRY

CIE_SCOPES = ("batch", "cluster")


def camera_entropy(labels: torch.Tensor, camids: torch.Tensor, num_classes: int) -> torch.Tensor:
    """H_k = −Σ_c p_kc·log₂ p_kc, p_kc = n_kc / n_k over the samples of class k (label −1 ignored);
    [num_classes] float, 0 for a class without samples."""
    keep = labels >= 0
    labels, camids = labels[keep].long(), camids[keep].long()
    if labels.numel() == 0:
        return torch.zeros(num_classes, device=labels.device)
    ncam = int(camids.max()) + 1
    pairs = torch.bincount(labels * ncam + camids, minlength=num_classes * ncam).view(num_classes, ncam).float()
    p = pairs / pairs.sum(1, keepdim=True).clamp(min=1)
    return -(p * torch.log2(p.clamp(min=1e-30))).sum(1)


@LOSS_REGISTRY.register()
class CIEWeightedCrossEntropy(nn.Module):
    """L = (1/B) Σ_i w_{y_i}·CE_i over ``outputs["logits"]``, w_k = |B_K|·e^{H_k} / Σ_{k'∈B_K} e^{H_k'}
    for the classes B_K present in the batch (the weights average 1 over them), H_k the camera
    entropy (``camera_entropy``; natural exp of a base-2 entropy, as 3C's code).

    ``MODEL.LOSSES.CIE.SCOPE``: ``"batch"`` counts cameras in the batch (``outputs["camids"]``, 3C);
    ``"cluster"`` uses each cluster's entropy over the whole pseudo-labelled set
    (``outputs["cluster_camera_entropy"]``), independent of what the sampler drew."""

    def __init__(self, cfg) -> None:
        super().__init__()
        self.scope = cfg.MODEL.LOSSES.CIE.SCOPE
        if self.scope not in CIE_SCOPES:
            raise ValueError(f"MODEL.LOSSES.CIE.SCOPE must be one of {CIE_SCOPES}, got {self.scope!r}")

    def forward(self, outputs, targets):
        logits = outputs["logits"]
        num_classes = logits.shape[1]
        if self.scope == "batch":
            if outputs.get("camids") is None:
                raise ValueError("CIEWeightedCrossEntropy needs the batch camera ids (outputs['camids']): "
                                 "use META_ARCHITECTURE ThreeC")
            entropy = camera_entropy(targets, outputs["camids"], num_classes)
        else:
            entropy = outputs["cluster_camera_entropy"]
            if entropy.numel() != num_classes:
                raise ValueError(f"MODEL.LOSSES.CIE.SCOPE cluster needs one camera entropy per cluster "
                                 f"({num_classes}), got {entropy.numel()}: the model must receive the "
                                 f"training camera ids in reset_pseudo_labels (META_ARCHITECTURE ThreeC)")
        present = torch.zeros(num_classes, dtype=torch.bool, device=logits.device)
        present[targets] = True
        raw = torch.exp(entropy.to(logits.device)) * present
        weights = present.sum() * raw / raw.sum()
        return (weights[targets] * F.cross_entropy(logits, targets, reduction="none")).mean()
