from .build import META_ARCH_REGISTRY, build_model, resolve_device
from .cluster_contrast import ClusterContrast, cluster_centroids

__all__ = ["META_ARCH_REGISTRY", "build_model", "resolve_device", "ClusterContrast", "cluster_centroids"]
