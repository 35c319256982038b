from .build import MEMORY_REGISTRY, build_memory
from .cluster_memory import ClusterMemory

__all__ = ["MEMORY_REGISTRY", "build_memory", "ClusterMemory"]
