from .build import MEMORY_REGISTRY, build_memory
from .cluster_memory import ClusterMemory
from .diversity_memory import DiversityMemory, diversity_selection

__all__ = ["MEMORY_REGISTRY", "build_memory", "ClusterMemory", "DiversityMemory", "diversity_selection"]
