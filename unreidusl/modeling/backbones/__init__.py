from .build import BACKBONE_REGISTRY, build_backbone
from . import resnet  # noqa: F401  (registers ResNet)

__all__ = ["BACKBONE_REGISTRY", "build_backbone"]
