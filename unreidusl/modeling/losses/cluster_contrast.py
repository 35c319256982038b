"""Cluster Contrast's loss: cross-entropy over memory logits x·Mᵀ/τ (InfoNCE over all C centroids)."""
from .build import LOSS_REGISTRY
from .softmax_ce import CrossEntropyLoss

ClusterContrastLoss = LOSS_REGISTRY.register(CrossEntropyLoss, name="ClusterContrastLoss")
