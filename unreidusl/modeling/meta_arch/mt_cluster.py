"""MTCluster (AuxUSLReID): a student and its EMA teacher, trained with a
centroid-initialised classifier (CE / LSCE / RLSCE), a batch-hard triplet (soft-margin / WATL) and soft
CE + soft triplet against the teacher.  The behaviours of the released code (per-frame BN, clustering
on raw pre-BN features, the reference RLSCE map, an EMA over the classifier) are selected by keys;
docs/reference_parity.md lists them."""
import copy

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ...cluster.jaccard import jaccard_distance
from ...config.compat import MEAN_TEACHER_LOSSES
from ..layers import ClusterClassifier
from .base import ReIDMethod
from .build import META_ARCH_REGISTRY
from .cluster_contrast import cluster_centroids
from .encoder import Encoder, PreBNFeatures
from .mean_teacher import ema_update_


def nearest_clusters(centroids: torch.Tensor, k: int, k1: int = 30, k2: int = 6) -> torch.Tensor:
    """[C, K] indices of the K clusters nearest to each by the k-reciprocal Jaccard distance between
    the unit centroids (k1, k2), self excluded. Jaccard ties (notably the many pairs at exactly 1)
    go to the higher cosine similarity, then the smaller index. Rows are padded with −1 when C ≤ K."""
    c = centroids.shape[0]
    k_eff = min(k, c - 1)
    if k_eff <= 0:
        return torch.full((c, k), -1, dtype=torch.long, device=centroids.device)
    sparse = jaccard_distance(centroids.cpu(), k1=min(k1, c), k2=min(k2, c)).tocoo()
    jac = torch.ones(c, c)  # unstored entries of the sparse Jaccard distance are 1
    jac[torch.from_numpy(sparse.row).long(), torch.from_numpy(sparse.col).long()] = torch.from_numpy(sparse.data).float()
    jac = jac.to(centroids.device) + 2 * torch.eye(c, device=centroids.device)  # self sorts last
    cos = centroids @ centroids.t()
    # stable sort by cosine (descending), then stable sort by Jaccard: lexicographic (Jaccard, −cos)
    by_cos = torch.sort(-cos, dim=1, stable=True).indices
    order = torch.sort(jac.gather(1, by_cos), dim=1, stable=True).indices
    nearest = by_cos.gather(1, order)[:, :k_eff]
    return F.pad(nearest, (0, k - k_eff), value=-1)


def reference_neighbour_map(centroids: torch.Tensor, k: int, k1: int = 30, k2: int = 6) -> torch.Tensor:
    """[C, K + 1] RLSCE map of AuxUSLReID's released code: per row, the K + 1 smallest entries of
    the Jaccard distance among the centroids as given (raw, not normalised; weights
    softmax(−(2 − 2<x, y>)), k1 kNN columns with self), in ascending order with ties by index, so the
    centroid itself (distance 0) is normally first.  Rows are padded with −1 when C < K + 1."""
    c = centroids.shape[0]
    width = min(k + 1, c)
    if width <= 0:
        return torch.full((c, k + 1), -1, dtype=torch.long, device=centroids.device)
    sparse = jaccard_distance(centroids.cpu().float(), k1=min(k1, c), k2=min(k2, c),
                              encode_dist="dot").tocoo()
    jac = torch.ones(c, c)  # unstored entries of the sparse Jaccard distance are 1
    jac[torch.from_numpy(sparse.row).long(), torch.from_numpy(sparse.col).long()] = torch.from_numpy(sparse.data).float()
    order = torch.sort(jac, dim=1, stable=True).indices[:, :width]
    return F.pad(order, (0, k + 1 - width), value=-1).to(centroids.device)


@META_ARCH_REGISTRY.register()
class MTCluster(ReIDMethod):
    """Eval mode returns the teacher's test features. Default losses (AuxUSLReID's ID_OPTION 3,
    TRI_OPTION 2): (1 − w_ce)·RLSCE + (1 − w_tri)·WATL + w_ce·soft CE + w_tri·soft triplet with
    w_ce = 0.5, w_tri = 0.8."""

    resizable = ("cluster_neighbors",)

    test_encoder = "teacher"
    supports_reference_features = True
    has_teacher = True
    default_losses = dict(MEAN_TEACHER_LOSSES)
    per_sample_grad_keys = ("pooled",)

    def __init__(self, cfg) -> None:
        super().__init__()
        loss_cfg = cfg.MODEL.LOSSES
        self.student = Encoder(cfg)
        self.student_classifier = ClusterClassifier(self.student.feat_dim)
        self.teacher = copy.deepcopy(self.student)
        self.teacher_classifier = ClusterClassifier(self.student.feat_dim)
        for p in list(self.teacher.parameters()) + list(self.teacher_classifier.parameters()):
            p.requires_grad_(False)
        self.id_k = loss_cfg.ID_K
        if loss_cfg.RLSCE_MAP not in ("nearest_others", "reference"):
            raise ValueError(f"MODEL.LOSSES.RLSCE_MAP must be 'nearest_others' or 'reference', got "
                             f"{loss_cfg.RLSCE_MAP!r}")
        self.reference_map = loss_cfg.RLSCE_MAP == "reference"
        if cfg.CLUSTER.FEATURE not in ("embedding", "pre_bn"):
            raise ValueError(f"CLUSTER.FEATURE must be 'embedding' or 'pre_bn', got {cfg.CLUSTER.FEATURE!r}")
        self.cluster_on_pre_bn = cfg.CLUSTER.FEATURE == "pre_bn"
        self.register_buffer("cluster_neighbors",
                             torch.zeros(0, self.id_k + self.reference_map, dtype=torch.long))
        self.build_losses(cfg)
        self.alpha, self.ema_buffers = cfg.MEAN_TEACHER.ALPHA, cfg.MEAN_TEACHER.EMA_BUFFERS
        self.ema_classifier = cfg.MEAN_TEACHER.EMA_CLASSIFIER

    def per_sample(self, images: torch.Tensor):
        """Per-sample outputs, computable chunk by chunk: student and teacher pooled features of
        every frame ([B, T, d] for clips)."""
        with torch.no_grad():
            teacher_pooled = self.teacher.frames_pooled(images)
        return {"pooled": self.student.frames_pooled(images), "teacher_pooled": teacher_pooled}

    def batch_losses(self, per_sample, targets: torch.Tensor):
        frames, t_frames = per_sample["pooled"], per_sample["teacher_pooled"]
        with torch.no_grad():
            t_logits = self.teacher_classifier(self.teacher.bn_features(t_frames))
            t_pooled = t_frames.mean(1) if t_frames.dim() == 3 else t_frames
        bn = self.student.bn_features(frames)
        pooled = frames.mean(1) if frames.dim() == 3 else frames
        outputs = {
            "features": F.normalize(bn, dim=1),
            "logits": self.student_classifier(bn),
            "triplet_features": pooled,
            "teacher_logits": t_logits,
            "teacher_triplet_features": t_pooled,
            "cluster_neighbors": self.cluster_neighbors,
        }
        return self.weighted_losses(outputs, targets)

    def forward(self, batch):
        images = batch["images"].to(self.device, non_blocking=True)
        if not self.training:
            return self.teacher.test_features(images)
        targets = batch["targets"].to(self.device, non_blocking=True)
        return self.float32_batch_losses(self.per_sample(images), targets)

    def cluster_extractor(self) -> torch.nn.Module:
        """The teacher's clustering features: its test feature, or with CLUSTER.FEATURE pre_bn its
        raw pooled feature (before the BN neck, not normalised)."""
        return PreBNFeatures(self.teacher) if self.cluster_on_pre_bn else self

    @torch.no_grad()
    def reset_pseudo_labels(self, result) -> None:
        """Both classifiers ← L2-normalised means of the clustering features; the RLSCE neighbour
        map from the centroids (RLSCE_MAP)."""
        means = cluster_centroids(result.features, result.labels).float()
        centroids = F.normalize(means, dim=1).to(self.device)
        self.student_classifier.weight.data = centroids.clone()
        self.teacher_classifier.weight.data = centroids.clone()
        if self.reference_map:
            self.cluster_neighbors = reference_neighbour_map(means, self.id_k).to(self.device)
        else:
            self.cluster_neighbors = nearest_clusters(centroids, self.id_k)

    def relabelled_parameters(self):
        """Parameters replaced by ``reset_pseudo_labels``: their optimiser state must be dropped."""
        return [self.student_classifier.weight]

    @torch.no_grad()
    def update_teacher(self, global_step: int) -> None:
        """θ_t ← α·θ_t + (1−α)·θ_s with α = min(1 − 1/(g+1), ALPHA); BN buffers too if EMA_BUFFERS,
        the classifier too if EMA_CLASSIFIER."""
        ema_update_(self.teacher, self.student, global_step, self.alpha, self.ema_buffers)
        if self.ema_classifier:
            ema_update_(self.teacher_classifier, self.student_classifier, global_step, self.alpha)
