"""A user plugin: a new clusterer, a new loss, a new method and a new config key, without touching
unreidusl (the method follows docs/meta_arch.md)."""
import numpy as np
import torch
import scipy.sparse as sp
import torch.nn.functional as F
from scipy.sparse.csgraph import connected_components
from torch import nn

from unreidusl.cluster import CLUSTERER_REGISTRY, Clusterer, ClusterResult
from unreidusl.config import CfgNode
from unreidusl.modeling import LOSS_REGISTRY
from unreidusl.modeling.meta_arch import META_ARCH_REGISTRY, Encoder, ReIDMethod, cluster_centroids


def add_config(cfg):
    cfg.TOY = CfgNode()
    cfg.TOY.SMOOTHING = 0.1


@CLUSTERER_REGISTRY.register()
class ConnectedComponents(Clusterer):
    """Clusters = connected components of the graph d <= eps; components smaller than MIN_SAMPLES are noise."""

    uses_eps = True
    calls = 0

    def __init__(self, cfg):
        self.min_size = cfg.CLUSTER.MIN_SAMPLES

    def __call__(self, dist, *, eps=None, features=None, cannot_link=None):
        type(self).calls += 1
        dist = sp.csr_matrix(dist) if not sp.issparse(dist) else dist.tocsr()
        graph = dist.copy()
        graph.data = (graph.data <= eps).astype(np.float64) + 1e-9
        _, comp = connected_components(graph, directed=False)
        sizes = np.bincount(comp)
        keep = sizes[comp] >= self.min_size
        labels = np.full(len(comp), -1, dtype=np.int64)
        _, labels[keep] = np.unique(comp[keep], return_inverse=True)
        return ClusterResult(labels, eps=eps)


@LOSS_REGISTRY.register()
class ToySmoothLoss(nn.Module):
    """Label-smoothed cross-entropy on the memory logits."""

    calls = 0

    def __init__(self, cfg):
        super().__init__()
        self.smoothing = cfg.TOY.SMOOTHING

    def forward(self, outputs, targets):
        type(self).calls += 1
        return F.cross_entropy(outputs["logits"], targets, label_smoothing=self.smoothing)


@META_ARCH_REGISTRY.register()
class ToyCentroidClassifier(ReIDMethod):
    """Cross-entropy of a classifier whose rows are the cluster centroids; no per_sample split."""

    def __init__(self, cfg):
        super().__init__()
        self.encoder = Encoder(cfg)
        self.register_buffer("centroids", torch.zeros(0, self.encoder.feat_dim))
        self.seen_camids = None

    def forward(self, batch):
        images = batch["images"].to(self.device)
        features = self.encoder.embed(self.encoder.pooled(images))
        if not self.training:
            return features
        logits = features @ self.centroids.t() / 0.1
        return {"toy_ce": F.cross_entropy(logits, batch["targets"].to(self.device))}

    @torch.no_grad()
    def reset_pseudo_labels(self, result):
        self.centroids = F.normalize(cluster_centroids(result.features, result.labels), dim=1).to(self.device)
        self.seen_camids = result.camids
