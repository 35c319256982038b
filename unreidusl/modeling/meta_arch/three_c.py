"""3C (Confidence-guided Clustering and Contrastive learning, docs/methods.md): Cluster
Contrast whose memory update and loss see the batch camera ids.

The method's parts are composed from shared components by the configs (``configs/Base-3C.yml``):
HDC clustering after a DBSCAN warm-up (``CLUSTER.NAME HDC``, ``CLUSTER.WARMUP_EPOCHS``), the CHD
memory update (``MODEL.MEMORY.UPDATE chd``) and the CIE-weighted loss (``CIEWeightedCrossEntropy``).
This module only routes the camera ids and prepares the memory at each new clustering."""
import numpy as np
import torch

from ..losses.camera_entropy import camera_entropy
from .build import META_ARCH_REGISTRY
from .cluster_contrast import ClusterContrast, cluster_centroids


@META_ARCH_REGISTRY.register()
class ThreeC(ClusterContrast):
    """``outputs`` also hold ``camids`` (batch) and ``cluster_camera_entropy`` (per cluster, over the
    pseudo-labelled set); the memory update receives the batch camera ids."""

    resizable = ("cluster_camera_entropy",)

    batch_keys = ("camids",)
    default_losses = {"CIEWeightedCrossEntropy": 1.0}

    def __init__(self, cfg) -> None:
        super().__init__(cfg)
        self.register_buffer("cluster_camera_entropy", torch.zeros(0))

    def batch_losses(self, per_sample, targets: torch.Tensor, camids: torch.Tensor = None):
        features = self.encoder.embed(per_sample["pooled"])
        outputs = {"features": features, "logits": self.memory.logits(features), "camids": camids,
                   "cluster_camera_entropy": self.cluster_camera_entropy}
        losses = self.weighted_losses(outputs, targets)
        self.memory.update(features.detach(), targets, camids)
        return losses

    @torch.no_grad()
    def reset_pseudo_labels(self, result) -> None:
        """Memory ← normalised means over the labels, or over ``result.centroid_labels`` (HDC's core
        members, same numbering) where that cluster has any; camera entropy of every cluster from
        ``result.camids``."""
        features, labels = result.features, result.labels
        centroid_labels, camids = result.centroid_labels, result.camids
        centroids = cluster_centroids(features, labels)
        if centroid_labels is not None:
            core = np.asarray(centroid_labels)
            core_means = cluster_centroids(features, core)
            rows = np.flatnonzero(np.bincount(core[core >= 0], minlength=len(core_means)) > 0)
            centroids[torch.from_numpy(rows)] = core_means[torch.from_numpy(rows)]
        self.memory.reset(centroids)
        if camids is not None:
            entropy = camera_entropy(torch.as_tensor(np.asarray(labels), dtype=torch.long),
                                     torch.as_tensor(camids, dtype=torch.long), len(centroids))
            self.cluster_camera_entropy = entropy.to(self.device)
