"""CDSM: Cluster-aware Diversity Samples Mining (docs/methods.md): a student and its EMA
teacher with a diversity memory of central and marginal proxies per pseudo-identity."""
from typing import Optional

import numpy as np
import torch

from ...cluster.reliability import INDEXING, label_iou, training_list_gate
from ..memory import build_memory
from .base import ReIDMethod
from .build import META_ARCH_REGISTRY
from .cluster_contrast import cluster_centroids
from .encoder import Encoder
from .mean_teacher import ema_update_, frozen_copy


def chunk_centroids(features: torch.Tensor, labels: np.ndarray, chunks: int, fallback: torch.Tensor) -> torch.Tensor:
    """[K, chunks, d]: each cluster's members, in sample order, cut into ``chunks`` consecutive runs of
    ⌈n/chunks⌉ (the last ones may be empty, as ``torch.chunk``), each run's mean; an empty run takes
    the cluster's ``fallback`` row (CDSM's multi-centre initialisation). Labels −1 are ignored."""
    labels_t = torch.as_tensor(labels, dtype=torch.long)
    members = torch.nonzero(labels_t >= 0).flatten()                       # ascending sample order
    y = labels_t[members]
    k = fallback.shape[0]
    counts = torch.bincount(y, minlength=k)
    order = torch.argsort(y, stable=True)
    rank = torch.arange(len(order)) - (torch.cumsum(counts, 0) - counts)[y[order]]
    run = torch.div(counts[y[order]] + chunks - 1, chunks, rounding_mode="floor")
    slot = y[order] * chunks + torch.div(rank, run, rounding_mode="floor")
    sums = torch.zeros(k * chunks, features.shape[1], dtype=features.dtype)
    sums.index_add_(0, slot, features[members[order]])
    size = torch.bincount(slot, minlength=k * chunks).unsqueeze(1).to(features.dtype)
    means = torch.where(size > 0, sums / size.clamp(min=1), fallback.repeat_interleave(chunks, 0))
    return means.view(k, chunks, -1)


@META_ARCH_REGISTRY.register()
class CDSM(ReIDMethod):
    """The loss (e.g. CenterMarginLoss) takes the student's features against the memory; the memory is
    updated with the teacher's features of the same augmented batch, gated per sample by the
    cluster-relative reliability; the teacher follows the student by EMA after every step
    and gives the features for clustering and evaluation.

    With ``MODEL.MEMORY.NAME ClusterMemory`` (CDSM's ``--memorybank CM`` / ``CMhard``, UPDATE
    momentum / hard) the same loop runs with one proxy per cluster."""

    resizable = ("reliable",)

    test_encoder = "teacher"
    has_teacher = True
    default_losses = {"CenterMarginLoss": 1.0}
    batch_keys = ("index",)
    per_sample_grad_keys = ("pooled",)

    def __init__(self, cfg) -> None:
        super().__init__()
        self.student = Encoder(cfg)
        self.teacher = frozen_copy(self.student)
        self.memory = build_memory(cfg, self.student.feat_dim)
        self.build_losses(cfg)
        self.alpha, self.ema_buffers = cfg.MEAN_TEACHER.ALPHA, cfg.MEAN_TEACHER.EMA_BUFFERS
        self.reliability_ratio = cfg.MODEL.MEMORY.RELIABILITY_RATIO
        self.reliability_indexing = cfg.MODEL.MEMORY.RELIABILITY_INDEXING
        if self.reliability_indexing not in INDEXING:
            raise ValueError(f"MODEL.MEMORY.RELIABILITY_INDEXING must be one of {INDEXING}, "
                             f"got {self.reliability_indexing!r}")
        # per pseudo-labelled sample (the outlier-free training list, in sample order = batch "index")
        self.register_buffer("reliable", torch.zeros(0, dtype=torch.bool))

    def per_sample(self, images: torch.Tensor):
        """Student pooled features (with gradient) and the teacher's, in train mode, same images."""
        with torch.no_grad():
            teacher_pooled = self.teacher.pooled(images)
        return {"pooled": self.student.pooled(images), "teacher_pooled": teacher_pooled}

    def batch_losses(self, per_sample, targets: torch.Tensor, index: Optional[torch.Tensor] = None):
        features = self.student.embed(per_sample["pooled"])
        with torch.no_grad():
            teacher_features = self.teacher.embed(per_sample["teacher_pooled"])
        outputs = {"features": features, "logits": self.memory.logits(features)}
        losses = self.weighted_losses(outputs, targets)
        if getattr(self.memory, "needs_reliability", False):
            reliable = None if index is None or not len(self.reliable) else self.reliable[index.to(self.reliable.device)]
            self.memory.update(teacher_features, targets, reliable)
        else:
            self.memory.update(teacher_features, targets)
        return losses

    def forward(self, batch):
        images = batch["images"].to(self.device, non_blocking=True)
        if not self.training:
            return self.teacher.embed(self.teacher.pooled(images))
        targets = batch["targets"].to(self.device, non_blocking=True)
        return self.float32_batch_losses(self.per_sample(images), targets, index=batch.get("index"))

    @torch.no_grad()
    def reset_pseudo_labels(self, result) -> None:
        """Memory from the clustering's core samples (``result.core``, e.g. DBSCAN's; all members of
        a cluster without one): central proxies = core means, marginal = ``chunk_centroids`` of the
        cores.  Reliability gate from the labellings at eps ∓ gap (R_comp, R_indep: ``label_iou``),
        read as MODEL.MEMORY.RELIABILITY_INDEXING says (``training_list_gate``); without them every
        sample passes."""
        features, labels, core = result.features, result.labels, result.core
        labels_tight, labels_loose = result.labels_tight, result.labels_loose
        keep = labels >= 0
        if getattr(self.memory, "needs_reliability", False):
            core = keep if core is None else (np.asarray(core, dtype=bool) & keep)
            has_core = np.zeros(labels.max(initial=-1) + 1, dtype=bool)
            has_core[labels[core]] = True
            init = np.where(keep & (core | ~has_core[np.maximum(labels, 0)]), labels, -1)
            central = cluster_centroids(features, init)
            self.memory.reset(central, chunk_centroids(features, init, self.memory.num_marginal, central))
        else:
            self.memory.reset(cluster_centroids(features, labels))
        if labels_tight is not None and labels_loose is not None:
            scores = (label_iou(labels, labels_tight), label_iou(labels, labels_loose))
            gate = training_list_gate(labels, scores, self.reliability_ratio, self.reliability_indexing)
        else:
            gate = np.ones(int(keep.sum()), dtype=bool)
        self.reliable = torch.from_numpy(gate).to(self.reliable.device)

    @torch.no_grad()
    def update_teacher(self, global_step: int) -> None:
        """EMA of the student's parameters (and BN buffers with MEAN_TEACHER.EMA_BUFFERS)."""
        ema_update_(self.teacher, self.student, global_step, self.alpha, self.ema_buffers)

