"""Cluster-level memory of Cluster Contrast (spec cluster-contrast-ise-ncplr.md §1.6)."""
import torch
import torch.nn.functional as F
from torch import nn

from ...utils import comm
from ..layers import resize_like_checkpoint
from .build import MEMORY_REGISTRY

UPDATE_MODES = ("momentum", "hard", "mean")


class ClusterMemory(nn.Module):
    """One unit-norm centroid per pseudo-identity.

    ``logits(x) = x · Mᵀ / τ`` uses the memory as a constant; ``update`` then moves centroids with
    ``c ← normalize(m·c + (1−m)·x)`` where ``m`` is the weight of the *old* value:

    * ``momentum``: for every sample in batch order (exactly Cluster Contrast's sequential rule);
    * ``hard``: once per class with its least similar sample ``argmin_i <x_i, c_y>``;
    * ``mean``: once per class with the batch mean of its samples.
    """

    def __init__(self, dim: int, temp: float = 0.05, old_weight: float = 0.1,
                 update: str = "momentum") -> None:
        super().__init__()
        if update not in UPDATE_MODES:
            raise ValueError(f"MODEL.MEMORY.UPDATE must be one of {UPDATE_MODES}, got {update!r}")
        if not 0.0 <= old_weight < 1.0:
            raise ValueError(f"MODEL.MEMORY.OLD_WEIGHT must be in [0, 1), got {old_weight}")
        self.dim, self.temp, self.old_weight, self.mode = dim, temp, old_weight, update
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
    def update(self, x: torch.Tensor, targets: torch.Tensor) -> None:
        """Out-of-place update, so tensors saved for the current backward stay valid. In a distributed
        job the ranks' batches are gathered first (in rank order), so every rank applies the same
        update of the whole global batch."""
        x, targets = comm.all_gather_cat(x), comm.all_gather_cat(targets)
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
                pick = torch.empty(len(classes), dtype=torch.long, device=x.device)
                for c in range(len(classes)):
                    idx = torch.nonzero(inverse == c).flatten()
                    pick[c] = idx[sim[idx].argmin()]
                chosen = x[pick]
            else:
                sums = torch.zeros(len(classes), x.shape[1], dtype=x.dtype, device=x.device)
                sums.index_add_(0, inverse, x)
                chosen = sums / torch.bincount(inverse).unsqueeze(1).to(x.dtype)
            mem[classes] = F.normalize(m * mem[classes] + (1 - m) * chosen, dim=1)
        self.features = mem

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        resize_like_checkpoint(self, state_dict, prefix, ["features"])
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)


@MEMORY_REGISTRY.register(name="ClusterMemory")
def build_cluster_memory(cfg, dim: int) -> ClusterMemory:
    m = cfg.MODEL.MEMORY
    return ClusterMemory(dim, m.TEMP, m.OLD_WEIGHT, m.UPDATE)
