"""Registered clusterers."""
import numpy as np
import scipy.sparse as sp
from sklearn.cluster import DBSCAN as _SkDBSCAN

from .build import CLUSTERER_REGISTRY
from .dbscan import dbscan_sparse


@CLUSTERER_REGISTRY.register()
class DBSCAN:
    """DBSCAN(eps, min_samples) on a precomputed distance; neighbourhood ``d ≤ eps`` includes the point."""

    def __init__(self, cfg) -> None:
        self.eps, self.min_samples = cfg.CLUSTER.EPS, cfg.CLUSTER.MIN_SAMPLES

    def __call__(self, dist) -> np.ndarray:
        if sp.issparse(dist):
            return dbscan_sparse(dist.tocsr(), self.eps, self.min_samples)
        model = _SkDBSCAN(eps=self.eps, min_samples=self.min_samples, metric="precomputed")
        return model.fit_predict(np.asarray(dist)).astype(np.int64)
