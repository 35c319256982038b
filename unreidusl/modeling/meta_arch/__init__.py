from .build import META_ARCH_REGISTRY, build_model, resolve_device
from .cdsm import CDSM
from .cluster_contrast import ClusterContrast, cluster_centroids
from .base import ReIDMethod
from .encoder import Encoder
from .ise import ISE, progressive_supports
from .mt_cluster import MTCluster, nearest_clusters
from .three_c import ThreeC
from .ncplr import NCPLR

__all__ = ["META_ARCH_REGISTRY", "build_model", "resolve_device", "ClusterContrast", "cluster_centroids",
           "Encoder", "ReIDMethod", "CDSM", "ThreeC", "ISE", "progressive_supports", "MTCluster", "nearest_clusters", "NCPLR"]
