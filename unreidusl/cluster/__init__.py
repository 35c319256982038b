from .build import CLUSTERER_REGISTRY, DISTANCE_REGISTRY, build_clusterer, build_distance
from . import clusterers, distances  # noqa: F401  (register the built-in components)
from .distances import apply_aux_terms
from .eps import AdaptiveEps, adaptive_eps
from .icdbscan import icdbscan
from .kmeans import kmeans
from .metrics import cluster_quality, cluster_summary

__all__ = ["CLUSTERER_REGISTRY", "DISTANCE_REGISTRY", "build_clusterer", "build_distance",
           "cluster_quality", "cluster_summary", "apply_aux_terms", "AdaptiveEps", "adaptive_eps",
           "icdbscan", "kmeans"]
