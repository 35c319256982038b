from .build import CLUSTERER_REGISTRY, DISTANCE_REGISTRY, build_clusterer, build_distance
from . import clusterers, distances  # noqa: F401  (register the built-in components)
from .metrics import cluster_quality, cluster_summary

__all__ = ["CLUSTERER_REGISTRY", "DISTANCE_REGISTRY", "build_clusterer", "build_distance",
           "cluster_quality", "cluster_summary"]
