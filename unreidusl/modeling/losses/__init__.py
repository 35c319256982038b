from .build import LOSS_REGISTRY, build_loss_set
from .camera_entropy import CIEWeightedCrossEntropy, camera_entropy
from .center_margin import CenterMarginLoss, center_margin_loss
from .cluster_contrast import ClusterContrastLoss
from .label_preserving import LabelPreservingLoss, label_preserving_loss
from .refined_labels import BranchContrastLoss, RefinedLabelLoss
from .softmax_ce import (CrossEntropyLoss, LabelSmoothingCrossEntropy, RestrictedLabelSmoothingCrossEntropy,
                         SoftCrossEntropyLoss, soft_cross_entropy)
from .triplet import (SoftMarginTripletLoss, SoftTripletLoss, WeightAdaptiveTripletLoss,
                      euclidean_dist, hard_example_mining)

__all__ = [
    "CIEWeightedCrossEntropy", "camera_entropy",
    "LOSS_REGISTRY", "build_loss_set", "ClusterContrastLoss", "CrossEntropyLoss", "LabelSmoothingCrossEntropy",
    "LabelPreservingLoss", "label_preserving_loss", "BranchContrastLoss", "RefinedLabelLoss", "CenterMarginLoss", "center_margin_loss",
    "RestrictedLabelSmoothingCrossEntropy", "SoftCrossEntropyLoss", "soft_cross_entropy",
    "SoftMarginTripletLoss", "SoftTripletLoss", "WeightAdaptiveTripletLoss", "euclidean_dist",
    "hard_example_mining",
]
