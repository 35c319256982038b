"""Distances, clusterers and pseudo-label quality. Importing it does not import torch (k-means and
the torch kNN backend import it when they run)."""
from .build import CLUSTERER_REGISTRY, DISTANCE_REGISTRY, build_clusterer, build_distance
from . import clusterers, distances  # noqa: F401  (register the built-in components)
from .clusterers import Clusterer
from .distances import Distance
from .result import ClusterResult
from .eps import AdaptiveEps, adaptive_eps
from .icdbscan import icdbscan
from .metrics import cluster_quality, cluster_summary

__all__ = ["CLUSTERER_REGISTRY", "DISTANCE_REGISTRY", "build_clusterer", "build_distance",
           "Clusterer", "ClusterResult", "Distance",
           "cluster_quality", "cluster_summary", "AdaptiveEps", "adaptive_eps",
           "icdbscan"]
