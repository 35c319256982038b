from .backbones import BACKBONE_REGISTRY, build_backbone
from .losses import LOSS_REGISTRY, build_loss_set
from .memory import MEMORY_REGISTRY, build_memory
from .meta_arch import META_ARCH_REGISTRY, build_model

__all__ = [
    "BACKBONE_REGISTRY", "LOSS_REGISTRY", "MEMORY_REGISTRY", "META_ARCH_REGISTRY",
    "build_backbone", "build_loss_set", "build_memory", "build_model",
]
