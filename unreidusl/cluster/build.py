from ..utils.registry import Registry

DISTANCE_REGISTRY = Registry("DISTANCE")
DISTANCE_REGISTRY.__doc__ = """Distances for clustering: called as ``obj(cfg)``; return a callable
``dist(features [N,d] float32 Tensor) -> np.ndarray [N,N] | scipy.sparse.csr_matrix`` (a sparse result
stores only the close pairs, explicit zeros included; every unstored pair counts as far apart)."""

CLUSTERER_REGISTRY = Registry("CLUSTERER")
CLUSTERER_REGISTRY.__doc__ = """Clusterers: called as ``obj(cfg)``; return a callable
``cluster(dist) -> np.ndarray[int64]`` of labels 0..C−1, with −1 for outliers."""


def build_distance(cfg):
    return DISTANCE_REGISTRY.get(cfg.CLUSTER.DISTANCE)(cfg)


def build_clusterer(cfg):
    return CLUSTERER_REGISTRY.get(cfg.CLUSTER.NAME)(cfg)
