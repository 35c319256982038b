"""Registered clusterers, all derived from :class:`Clusterer`.

A clusterer is built as ``obj(cfg)`` and called as ``obj(dist, *, eps=None, features=None,
cannot_link=None) -> ClusterResult``; its class attributes declare what it needs, and
``cluster.pipeline.PseudoLabeler`` passes exactly that:

* ``input_kind``: ``"distance"`` (``dist`` is the N x N distance) or ``"features"`` (``dist`` is
  None; the N x d ``features`` are given);
* ``uses_eps``: a radius ``eps`` is passed (fixed ``CLUSTER.EPS``, adaptive, or scaled by the
  empty-cluster policy); the result records it;
* ``needs_features``: a distance-based clusterer that also reads the features (HDC);
* ``uses_cannot_link``: the TOC cannot-link constraints (N x N sparse boolean) are passed (with
  ``CLUSTER.TOC.ENABLED``).
"""
import numpy as np
import scipy.sparse as sp
from sklearn.cluster import DBSCAN as _SkDBSCAN

from .build import CLUSTERER_REGISTRY
from .dbscan import dbscan_sparse
from .icdbscan import constraint_sets, icdbscan
from .result import ClusterResult

__all__ = ["Clusterer", "DBSCAN", "ICDBSCAN", "KMeans", "HDC"]


class Clusterer:
    """Base of the clusterers (module docstring)."""

    input_kind = "distance"
    uses_eps = False
    needs_features = False
    uses_cannot_link = False

    def __call__(self, dist, *, eps=None, features=None, cannot_link=None) -> ClusterResult:
        raise NotImplementedError


@CLUSTERER_REGISTRY.register()
class DBSCAN(Clusterer):
    """DBSCAN(eps, CLUSTER.MIN_SAMPLES) on a precomputed distance; the neighbourhood ``d ≤ eps``
    includes the point.  The result holds the core-sample mask.  On a sparse distance the unstored
    pairs are at distance 1, so an eps >= 1 makes every pair neighbours: one cluster."""

    uses_eps = True

    def __init__(self, cfg) -> None:
        self.min_samples = cfg.CLUSTER.MIN_SAMPLES

    def __call__(self, dist, *, eps=None, features=None, cannot_link=None) -> ClusterResult:
        eps = float(eps)
        if sp.issparse(dist) and eps >= 1.0:
            n = dist.shape[0]
            core = np.full(n, n >= self.min_samples)
            return ClusterResult(np.where(core, 0, -1), eps=eps, core=core)
        if sp.issparse(dist):
            labels, core = dbscan_sparse(dist.tocsr(), eps, self.min_samples, return_core=True)
            return ClusterResult(labels, eps=eps, core=core)
        model = _SkDBSCAN(eps=eps, min_samples=self.min_samples, metric="precomputed")
        labels = model.fit_predict(np.asarray(dist)).astype(np.int64)
        core = np.zeros(len(labels), dtype=bool)
        core[model.core_sample_indices_] = True
        return ClusterResult(labels, eps=eps, core=core)


@CLUSTERER_REGISTRY.register()
class ICDBSCAN(Clusterer):
    """DBSCAN with cannot-link sets (AuxUSLReID's TOC in training), see ``icdbscan.py``:
    ``CLUSTER.EPS``, ``CLUSTER.MIN_SAMPLES``, relaxation ``CLUSTER.TOC.RELAXED``, growth order
    ``CLUSTER.TOC.ORDER``.  In "reference" order the clusterer keeps the constraint sets
    between calls, as the released code did: the first call takes them from ``cannot_link``, and
    every call relaxes and grows them in place (a resumed run starts again from ``cannot_link``,
    as the released code re-read its file)."""

    uses_eps = True
    uses_cannot_link = True

    def __init__(self, cfg) -> None:
        self.min_samples = cfg.CLUSTER.MIN_SAMPLES
        self.relaxed = cfg.CLUSTER.TOC.RELAXED
        self.order = cfg.CLUSTER.TOC.ORDER
        if self.order not in ("fifo", "reference"):
            raise ValueError(f"CLUSTER.TOC.ORDER must be 'fifo' or 'reference', got {self.order!r}")
        self.constraint_sets = None

    def __call__(self, dist, *, eps=None, features=None, cannot_link=None) -> ClusterResult:
        if sp.issparse(dist) and float(eps) >= 1.0:
            from .empty_policy import PseudoLabelError  # noqa: PLC0415
            raise PseudoLabelError(
                f"ICDBSCAN with eps={float(eps):.4g}: the Jaccard distance lies in [0, 1], so every pair "
                f"would be a neighbour. Decrease CLUSTER.EPS (or CLUSTER.ADAPTIVE_RHO) below 1")
        if self.order == "reference":
            if self.constraint_sets is None:
                self.constraint_sets = constraint_sets(cannot_link, dist.shape[0])
            cannot_link = self.constraint_sets
        labels = icdbscan(dist, float(eps), self.min_samples, cannot_link, self.relaxed, order=self.order)
        return ClusterResult(labels, eps=float(eps))


@CLUSTERER_REGISTRY.register()
class KMeans(Clusterer):
    """k-means with K = ``CLUSTER.NUM_CLUSTERS`` on the features (``kmeans.py``); clusters smaller
    than ``CLUSTER.MIN_SAMPLES`` become outliers.  The seed is drawn from numpy's global generator,
    which the trainer seeds per epoch, so runs are reproducible."""

    input_kind = "features"

    def __init__(self, cfg) -> None:
        c = cfg.CLUSTER
        self.k, self.iters, self.backend = c.NUM_CLUSTERS, c.KMEANS_ITERS, c.KMEANS_BACKEND
        self.normalize, self.min_size = c.KMEANS_NORMALIZE, c.MIN_SAMPLES

    def __call__(self, dist=None, *, eps=None, features=None, cannot_link=None) -> ClusterResult:
        from .kmeans import filter_small, kmeans  # noqa: PLC0415 - torch only when k-means runs

        seed = int(np.random.randint(0, 2 ** 31 - 1))
        labels, _ = kmeans(features, self.k, self.iters, seed, self.backend,
                           normalize=self.normalize)
        return ClusterResult(filter_small(labels, self.min_size))


@CLUSTERER_REGISTRY.register()
class HDC(Clusterer):
    """3C's Harmonic Discrepancy Clustering (``hdc.py``) with K = ``CLUSTER.NUM_CLUSTERS`` on the
    distance (1 - exp(-D)) and the features, options under ``CLUSTER.HDC``.  Returned labels: the
    full assignment, or with ``HDC.OUTLIER`` the assignment minus the peripheral samples (-1);
    then clusters with fewer than ``CLUSTER.MIN_SAMPLES`` members become -1.  With
    ``HDC.CENTROIDS`` and without ``HDC.OUTLIER``, the result's ``centroid_labels`` (the kept labels
    minus the peripheral samples) tell the model to initialise the memory from the core members only.
    Seeded from numpy's global generator (seeded per epoch by the trainer); runs on CUDA when
    ``MODEL.DEVICE`` allows it."""

    needs_features = True

    def __init__(self, cfg) -> None:
        c, h = cfg.CLUSTER, cfg.CLUSTER.HDC
        self.k, self.min_size, self.device_name = c.NUM_CLUSTERS, c.MIN_SAMPLES, cfg.MODEL.DEVICE
        self.outlier, self.use_core_centroids = h.OUTLIER, h.CENTROIDS and not h.OUTLIER
        self.options = dict(init=h.INIT, max_iter=h.MAX_ITER, min_iter=h.MIN_ITER, patience=h.PATIENCE,
                            distance=h.DISTANCE, alpha=h.EULER_ALPHA, confidence_scale=h.CONFIDENCE_SCALE,
                            n_sigma=h.N_SIGMA, threshold=h.THRESHOLD if h.THRESHOLD > 0 else None,
                            normalize=h.NORMALIZE, protect=h.PROTECT)

    def __call__(self, dist, *, eps=None, features=None, cannot_link=None) -> ClusterResult:
        import torch  # noqa: PLC0415 - torch only when HDC runs

        from .hdc import hdc  # noqa: PLC0415
        from .kmeans import filter_small  # noqa: PLC0415

        if features is None:
            raise ValueError("HDC clusters the features and the distance: call it as cluster(dist, features=X)")
        name = self.device_name
        device = "cuda" if name == "auto" and torch.cuda.is_available() else ("cpu" if name == "auto" else name)
        gen = torch.Generator().manual_seed(int(np.random.randint(0, 2 ** 31 - 1)))
        result = hdc(features, dist, self.k, generator=gen, device=device, **self.options)
        labels = np.where(result.peripheral, -1, result.labels) if self.outlier else result.labels
        labels = filter_small(labels, self.min_size)
        core = np.where(result.peripheral, -1, labels) if self.use_core_centroids else None
        return ClusterResult(labels, centroid_labels=core, stats={"hdc_iterations": result.iterations})
