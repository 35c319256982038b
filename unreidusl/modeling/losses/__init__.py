from .build import LOSS_REGISTRY, build_losses
from .cluster_contrast import ClusterContrastLoss

__all__ = ["LOSS_REGISTRY", "build_losses", "ClusterContrastLoss"]
