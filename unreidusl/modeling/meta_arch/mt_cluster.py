"""MTCluster (AuxUSLReID, spec auxuslreid.md §3-4): a student and its EMA teacher, trained with a
centroid-initialised classifier (CE / LSCE / RLSCE), a batch-hard triplet (soft-margin / WATL) and soft
CE + soft triplet against the teacher."""
import copy

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ...cluster.jaccard import jaccard_distance
from ..layers import ClusterClassifier
from ..losses import LOSS_REGISTRY
from .build import META_ARCH_REGISTRY
from .cluster_contrast import cluster_centroids
from .encoder import Encoder, EncoderMethod
from .mean_teacher import ema_update_

_ID_LOSSES = {1: "CrossEntropyLoss", 2: "LabelSmoothingCrossEntropy", 3: "RestrictedLabelSmoothingCrossEntropy"}
_TRI_LOSSES = {1: "SoftMarginTripletLoss", 2: "WeightAdaptiveTripletLoss"}


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


@META_ARCH_REGISTRY.register()
class MTCluster(EncoderMethod):
    """Eval mode returns the teacher's unit features (retrieval and clustering)."""

    resizable = ("cluster_neighbors",)

    test_encoder = "teacher"

    def __init__(self, cfg) -> None:
        super().__init__()
        loss_cfg = cfg.MODEL.LOSSES
        if loss_cfg.ID_OPTION not in _ID_LOSSES or loss_cfg.TRI_OPTION not in _TRI_LOSSES:
            raise ValueError(f"MODEL.LOSSES.ID_OPTION must be one of {sorted(_ID_LOSSES)} and TRI_OPTION one "
                             f"of {sorted(_TRI_LOSSES)}; got {loss_cfg.ID_OPTION} and {loss_cfg.TRI_OPTION}")
        self.student = Encoder(cfg)
        self.student_classifier = ClusterClassifier(self.student.feat_dim)
        self.teacher = copy.deepcopy(self.student)
        self.teacher_classifier = ClusterClassifier(self.student.feat_dim)
        for p in list(self.teacher.parameters()) + list(self.teacher_classifier.parameters()):
            p.requires_grad_(False)
        self.id_k = loss_cfg.ID_K
        self.register_buffer("cluster_neighbors", torch.zeros(0, self.id_k, dtype=torch.long))
        self.register_buffer("label_version", torch.zeros((), dtype=torch.long))
        w_ce, w_tri = cfg.MUTUAL_TEACH.CE_SOFT_WRIGHT, cfg.MUTUAL_TEACH.TRI_SOFT_WRIGHT
        names = {_ID_LOSSES[loss_cfg.ID_OPTION]: 1 - w_ce, _TRI_LOSSES[loss_cfg.TRI_OPTION]: 1 - w_tri,
                 "SoftCrossEntropyLoss": w_ce, "SoftTripletLoss": w_tri}
        self.losses = nn.ModuleDict({n: LOSS_REGISTRY.get(n)(cfg) for n in names})
        self.loss_weights = names
        self.alpha, self.ema_buffers = cfg.MUTUAL_TEACH.ALPHA, cfg.MUTUAL_TEACH.EMA_BUFFERS

    # Keys of ``per_sample`` that carry gradient (used by gradient accumulation).
    per_sample_grad_keys = ("pooled",)

    def per_sample(self, images: torch.Tensor):
        """Per-sample outputs, computable chunk by chunk: student and teacher pooled features."""
        with torch.no_grad():
            teacher_pooled = self.teacher.pooled(images)
        return {"pooled": self.student.pooled(images), "teacher_pooled": teacher_pooled}

    def batch_losses(self, per_sample, targets: torch.Tensor):
        pooled, t_pooled = per_sample["pooled"], per_sample["teacher_pooled"]
        with torch.no_grad():
            t_logits = self.teacher_classifier(self.teacher.neck(t_pooled))
        bn = self.student.neck(pooled)
        outputs = {
            "features": F.normalize(bn, dim=1),
            "logits": self.student_classifier(bn),
            "triplet_features": pooled,
            "teacher_logits": t_logits,
            "teacher_triplet_features": t_pooled,
            "cluster_neighbors": self.cluster_neighbors,
        }
        return {n: self.loss_weights[n] * fn(outputs, targets) for n, fn in self.losses.items()}

    def forward(self, batch):
        images = batch["images"].to(self.device, non_blocking=True)
        if not self.training:
            return self.teacher.embed(self.teacher.pooled(images))
        targets = batch["targets"].to(self.device, non_blocking=True)
        return self.batch_losses(self.per_sample(images), targets)

    @torch.no_grad()
    def reset_pseudo_labels(self, features: torch.Tensor, labels: np.ndarray) -> None:
        """Both classifiers ← L2-normalised centroids; RLSCE neighbour map from the centroids."""
        centroids = F.normalize(cluster_centroids(features, labels).float(), dim=1).to(self.device)
        self.student_classifier.weight.data = centroids.clone()
        self.teacher_classifier.weight.data = centroids.clone()
        self.cluster_neighbors = nearest_clusters(centroids, self.id_k)
        self.label_version += 1

    def relabelled_parameters(self):
        """Parameters replaced by ``reset_pseudo_labels``: their optimiser state must be dropped."""
        return [self.student_classifier.weight]

    @torch.no_grad()
    def update_teacher(self, global_step: int) -> None:
        """θ_t ← α·θ_t + (1−α)·θ_s with α = min(1 − 1/(g+1), ALPHA); BN buffers too if EMA_BUFFERS."""
        ema_update_(self.teacher, self.student, global_step, self.alpha, self.ema_buffers)
