"""Cluster-level memory of Cluster Contrast."""
import torch
import torch.nn.functional as F

from ...utils import comm
from ...utils.segment import segment_argmax
from ..layers import ResizableModule
from .build import MEMORY_REGISTRY

UPDATE_MODES = ("momentum", "hard", "mean", "chd", "tccl")
CAMERA_MODES = ("chd", "tccl")
CHD_SINGLETONS = ("cluster", "max")


class ClusterMemory(ResizableModule):
    """One unit-norm centroid per pseudo-identity.

    ``logits(x) = x · Mᵀ / τ`` uses the memory as a constant; ``update`` then moves centroids with
    ``c ← normalize(m·c + (1−m)·x)`` where ``m`` is the weight of the *old* value:

    * ``momentum``: for every sample in batch order (exactly Cluster Contrast's sequential rule);
    * ``hard``: once per class with its least similar sample ``argmin_i <x_i, c_y>``;
    * ``mean``: once per class with the batch mean of its samples;
    * ``chd`` (3C, needs the batch camera ids): once per class with the sample
      of largest confidence-integrated harmonic discrepancy ``CHD = s·d / (s + d)``, hardness
      ``d = 1 − <x, c_y>``, confidence ``s = 1 + <x, ĉ>`` with ĉ the normalised mean of the
      sample's (class, camera) group in the batch.  A group of one sample has s = 2 in 3C's code
      (``chd_singleton="max"``); ``"cluster"`` measures it against its class's batch centre instead;
    * ``tccl`` (3C's TCCL baseline): per (class, camera) group the normalised mean; per class the
      group mean least similar to c_y updates it.
    """

    resizable = ("features",)

    def __init__(self, dim: int, temp: float = 0.05, old_weight: float = 0.1,
                 update: str = "momentum", chd_singleton: str = "cluster") -> None:
        super().__init__()
        if update not in UPDATE_MODES:
            raise ValueError(f"MODEL.MEMORY.UPDATE must be one of {UPDATE_MODES}, got {update!r}")
        if chd_singleton not in CHD_SINGLETONS:
            raise ValueError(f"MODEL.MEMORY.CHD_SINGLETON must be one of {CHD_SINGLETONS}, got {chd_singleton!r}")
        if not 0.0 <= old_weight < 1.0:
            raise ValueError(f"MODEL.MEMORY.OLD_WEIGHT must be in [0, 1), got {old_weight}")
        self.dim, self.temp, self.old_weight, self.mode = dim, temp, old_weight, update
        self.chd_singleton = chd_singleton
        self.register_buffer("features", torch.zeros(0, dim))

    @property
    def num_classes(self) -> int:
        return self.features.shape[0]

    @torch.no_grad()
    def reset(self, centroids: torch.Tensor) -> None:
        """Replace the memory by the L2-normalised ``centroids`` [C, dim]."""
        if centroids.dim() != 2 or centroids.shape[1] != self.dim:
            raise ValueError(f"centroids must be [C, {self.dim}], got {tuple(centroids.shape)}")
        self.features = F.normalize(centroids.float(), dim=1).to(self.features.device)

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        if self.num_classes == 0:
            raise RuntimeError("ClusterMemory is empty: reset() it with cluster centroids first")
        return x.mm(self.features.t()) / self.temp

    @torch.no_grad()
    def update(self, x: torch.Tensor, targets: torch.Tensor, camids=None) -> None:
        """Out-of-place update, so tensors saved for the current backward stay valid. In a distributed
        job the ranks' batches are gathered first (in rank order), so every rank applies the same
        update of the whole global batch."""
        if self.mode in CAMERA_MODES and camids is None:
            raise ValueError(f"MODEL.MEMORY.UPDATE {self.mode!r} needs the batch camera ids: use a "
                             f"meta-architecture that passes them (e.g. ThreeC)")
        x, targets = comm.all_gather_cat(x), comm.all_gather_cat(targets)
        camids = None if camids is None else comm.all_gather_cat(camids)
        mem, m = self.features.clone(), self.old_weight
        x = x.to(mem.dtype)
        if self.mode == "momentum":
            # The j-th occurrences of all classes are independent, so apply them together:
            # K rounds instead of B sequential steps, identical result.
            _, inverse, counts = torch.unique(targets, return_inverse=True, return_counts=True)
            order = torch.argsort(inverse, stable=True)
            starts = torch.cumsum(counts, 0) - counts
            rank = torch.empty_like(order)
            rank[order] = torch.arange(len(order), device=order.device) - starts[inverse[order]]
            for j in range(int(counts.max())):
                sel = rank == j
                y = targets[sel]
                mem[y] = F.normalize(m * mem[y] + (1 - m) * x[sel], dim=1)
        else:
            classes, inverse = torch.unique(targets, return_inverse=True)
            if self.mode == "hard":
                sim = (x * mem[targets]).sum(1)
                chosen = x[segment_argmax(-sim, inverse, len(classes))[1]]
            elif self.mode in CAMERA_MODES:
                chosen = self._camera_pick(x, mem, targets, inverse, len(classes), camids.to(x.device))
            else:
                sums = torch.zeros(len(classes), x.shape[1], dtype=x.dtype, device=x.device)
                sums.index_add_(0, inverse, x)
                chosen = sums / torch.bincount(inverse).unsqueeze(1).to(x.dtype)
            mem[classes] = F.normalize(m * mem[classes] + (1 - m) * chosen, dim=1)
        self.features = mem

    def _camera_pick(self, x, mem, targets, inverse, num_classes, camids):
        """The vector that updates each class in the ``chd`` / ``tccl`` modes (class docstring)."""
        _, group = torch.unique(inverse * (int(camids.max()) + 1) + camids, return_inverse=True)
        num_groups = int(group.max()) + 1
        centre = F.normalize(torch.zeros(num_groups, x.shape[1], dtype=x.dtype, device=x.device)
                             .index_add_(0, group, x), dim=1)
        if self.mode == "tccl":
            group_class = torch.zeros(num_groups, dtype=torch.long, device=x.device).scatter_(0, group, inverse)
            group_target = torch.zeros_like(group_class).scatter_(0, group, targets)
            sim = (centre * mem[group_target]).sum(1)
            return centre[segment_argmax(-sim, group_class, num_classes)[1]]
        s = (x * centre[group]).sum(1) + 1
        if self.chd_singleton == "cluster":
            alone = torch.bincount(group, minlength=num_groups)[group] == 1
            class_centre = F.normalize(torch.zeros(num_classes, x.shape[1], dtype=x.dtype, device=x.device)
                                       .index_add_(0, inverse, x), dim=1)
            s = torch.where(alone, (x * class_centre[inverse]).sum(1) + 1, s)
        d = 1 - (x * mem[targets]).sum(1)
        chd = torch.where(s + d > 0, s * d / (s + d), torch.zeros_like(s))
        return x[segment_argmax(chd, inverse, num_classes)[1]]


@MEMORY_REGISTRY.register(name="ClusterMemory")
def build_cluster_memory(cfg, dim: int) -> ClusterMemory:
    m = cfg.MODEL.MEMORY
    return ClusterMemory(dim, m.TEMP, m.OLD_WEIGHT, m.UPDATE, m.CHD_SINGLETON)
