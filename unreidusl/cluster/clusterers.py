"""Registered clusterers.

Interface: ``obj(cfg)`` returns a callable ``cluster(dist) -> labels`` (int64, noise -1).  Optional
extensions the trainer uses when present:

* ``eps`` attribute: set by the trainer before each call when ``CLUSTER.ADAPTIVE`` is on;
* ``cluster(dist, cannot_link=CL)``: cannot-link constraints (N x N sparse boolean), passed only
  when ``CLUSTER.ICDBSCAN_OPTION`` is on;
* ``input_kind = "features"``: the clusterer takes the N x d features instead of a distance.
"""
import numpy as np
import scipy.sparse as sp
from sklearn.cluster import DBSCAN as _SkDBSCAN

from .build import CLUSTERER_REGISTRY
from .dbscan import dbscan_sparse
from .icdbscan import icdbscan


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


@CLUSTERER_REGISTRY.register()
class ICDBSCAN:
    """DBSCAN with cannot-link sets (AuxUSLReID's TOC in training), see ``icdbscan.py``:
    ``CLUSTER.EPS``, ``CLUSTER.MIN_SAMPLES``, relaxation ``CLUSTER.ICDBSCAN_RELAXED``."""

    def __init__(self, cfg) -> None:
        self.eps, self.min_samples = cfg.CLUSTER.EPS, cfg.CLUSTER.MIN_SAMPLES
        self.relaxed = cfg.CLUSTER.ICDBSCAN_RELAXED

    def __call__(self, dist, cannot_link=None) -> np.ndarray:
        return icdbscan(dist, self.eps, self.min_samples, cannot_link, self.relaxed)


@CLUSTERER_REGISTRY.register()
class KMeans:
    """k-means with K = ``CLUSTER.NUM_CLUSTERS`` on the features (``kmeans.py``); clusters smaller
    than ``CLUSTER.MIN_SAMPLES`` become outliers.  The seed is drawn from numpy's global generator,
    which the trainer seeds per epoch, so runs are reproducible."""

    input_kind = "features"

    def __init__(self, cfg) -> None:
        c = cfg.CLUSTER
        self.k, self.iters, self.backend = c.NUM_CLUSTERS, c.KMEANS_ITERS, c.KMEANS_BACKEND
        self.normalize, self.min_size = c.KMEANS_NORMALIZE, c.MIN_SAMPLES

    def __call__(self, features) -> np.ndarray:
        from .kmeans import filter_small, kmeans  # noqa: PLC0415 - torch only when k-means runs

        seed = int(np.random.randint(0, 2 ** 31 - 1))
        labels, _ = kmeans(features, self.k, self.iters, seed, self.backend,
                           normalize=self.normalize)
        return filter_small(labels, self.min_size)
