import logging

import torch

from ...config import ConfigError
from ...utils.registry import Registry
from ..layers.batch_norm import convert_batch_norm

META_ARCH_REGISTRY = Registry("META_ARCH")
META_ARCH_REGISTRY.__doc__ = """Meta-architectures: called as ``obj(cfg)``; return an ``nn.Module`` whose
``forward(batch)`` returns a dict of losses in training mode and L2-normalised features in eval mode,
and whose ``reset_pseudo_labels(features, labels)`` prepares it for a new set of pseudo-labels (it may also
take ``distance=``, the clustering distance). An optional ``cluster_extractor()`` returns the module whose
eval forward gives the clustering features (default: the model itself)."""

logger = logging.getLogger(__name__)


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise RuntimeError(f"MODEL.DEVICE={name} but CUDA is not available; use MODEL.DEVICE auto or cpu")
    return device


def build_model(cfg) -> torch.nn.Module:
    model = META_ARCH_REGISTRY.get(cfg.MODEL.META_ARCHITECTURE)(cfg)
    if (cfg.MODEL.HEADS.FRAME_BN or cfg.CLUSTER.FEATURE != "embedding") and not getattr(
            model, "supports_reference_features", False):
        raise ConfigError(f"MODEL.HEADS.FRAME_BN True / CLUSTER.FEATURE pre_bn (AuxUSLReID's released "
                          f"model) are implemented by MTCluster only, not by {type(model).__name__}: "
                          f"set MODEL.HEADS.FRAME_BN False and CLUSTER.FEATURE embedding")
    device = resolve_device(cfg.MODEL.DEVICE)
    model = convert_batch_norm(model, cfg, device)
    # Channels-last weights make the convolutions produce (and take) channels-last activations.
    model.to(device, memory_format=torch.channels_last if cfg.MODEL.CHANNELS_LAST else torch.preserve_format)
    n_params = sum(p.numel() for p in model.parameters())
    logger.info("Built %s with %.2fM parameters", type(model).__name__, n_params / 1e6)
    return model
