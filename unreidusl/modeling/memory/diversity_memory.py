"""CDSM's diversity memory (CMhybrid_v5; CMhybrid_v4 = without the reliability gate)."""
import torch
import torch.nn.functional as F

from ...utils import comm
from ..layers import ResizableModule
from .build import MEMORY_REGISTRY


def diversity_selection(x: torch.Tensor, valid: torch.Tensor, reliable: torch.Tensor, max_selected: int):
    """Greedy diversity sample mining inside one class, for a padded batch of classes at once.

    ``x`` [C, n, d]: the rows of each class in batch order, padded; ``valid`` [C, n] marks real rows;
    ``reliable`` [C, n] bool. D = pairwise Euclidean distances (sqrt of the squared distance clamped at 1e-12),
    d̄_j = mean_i D_ij over the class. Candidates are visited by decreasing d̄; the first is taken
    unconditionally, a later one i if D_ij ≥ d̄_j for every selected j and it is reliable, until
    ``max_selected``. Returns (selected [C, n] bool, d̄ [C, n] with +inf on padding)."""
    c, n, _ = x.shape
    sq = (x.unsqueeze(2) - x.unsqueeze(1)).pow(2).sum(3)
    dist = sq.clamp(min=1e-12).sqrt()
    pair = valid.unsqueeze(1) & valid.unsqueeze(2)
    count = valid.sum(1, keepdim=True).clamp(min=1)
    mean_dist = (dist * pair).sum(1) / count                                # d̄_j, [C, n]
    order = mean_dist.masked_fill(~valid, float("-inf")).argsort(dim=1, descending=True, stable=True)
    rows = torch.arange(c, device=x.device)
    selected = torch.zeros(c, n, dtype=torch.bool, device=x.device)
    selected[rows, order[:, 0]] = True
    for r in range(1, n):
        i = order[:, r]
        far = ((dist[rows, i] >= mean_dist) | ~selected).all(1)
        room = selected.sum(1) < max_selected
        selected[rows, i] |= valid[rows, i] & reliable[rows, i] & far & room
    return selected, mean_dist.masked_fill(~valid, float("inf"))


class DiversityMemory(ResizableModule):
    """K central + M·K marginal proxies, block-major: row k is cluster k's central proxy and row
    k + s·K (s = 1..M) its s-th marginal proxy. ``logits(x) = x·Mᵀ/τ`` ([B, (M+1)·K]).

    ``update(x, targets, reliable)`` (x: teacher features) for every class in the batch: greedy
    diversity mining (``diversity_selection``; ``reliable`` gates all but the first pick, unless
    the gate is off = CDSM's v4) fills marginal slots 1..S with the selected samples in batch order,
    m ← μ·m + (1−μ)·x; the class medoid (argmin d̄) updates the central proxy the same way. μ is the
    weight of the old value; rows are re-normalised unless ``renormalize`` is off (the code)."""

    resizable = ("features",)

    needs_reliability = True

    def __init__(self, dim: int, num_marginal: int, temp: float = 0.05, old_weight: float = 0.05,
                 gate: bool = True, renormalize: bool = True) -> None:
        super().__init__()
        if num_marginal < 1:
            raise ValueError(f"MODEL.MEMORY.NUM_MARGINAL must be >= 1, got {num_marginal}")
        if not 0.0 <= old_weight < 1.0:
            raise ValueError(f"MODEL.MEMORY.OLD_WEIGHT must be in [0, 1), got {old_weight}")
        self.dim, self.num_marginal, self.temp, self.old_weight = dim, num_marginal, temp, old_weight
        self.gate, self.renormalize = gate, renormalize
        self.register_buffer("features", torch.zeros(0, dim))

    @property
    def num_classes(self) -> int:
        return self.features.shape[0] // (self.num_marginal + 1)

    @torch.no_grad()
    def reset(self, centroids: torch.Tensor, marginal: torch.Tensor = None) -> None:
        """Central proxies ← ``centroids`` [K, d]; marginal ← ``marginal`` [K, M, d] (default: the
        centroids repeated); everything L2-normalised."""
        k, m = centroids.shape[0], self.num_marginal
        if centroids.dim() != 2 or centroids.shape[1] != self.dim:
            raise ValueError(f"centroids must be [K, {self.dim}], got {tuple(centroids.shape)}")
        if marginal is None:
            marginal = centroids.unsqueeze(1).expand(k, m, self.dim)
        if marginal.shape != (k, m, self.dim):
            raise ValueError(f"marginal proxies must be [{k}, {m}, {self.dim}], got {tuple(marginal.shape)}")
        rows = torch.cat([centroids.unsqueeze(1), marginal], 1).transpose(0, 1).reshape(-1, self.dim)
        self.features = F.normalize(rows.float(), dim=1).to(self.features.device)

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        if self.features.shape[0] == 0:
            raise RuntimeError("DiversityMemory is empty: reset() it with cluster centroids first")
        return x.mm(self.features.t()) / self.temp

    @torch.no_grad()
    def update(self, x: torch.Tensor, targets: torch.Tensor, reliable: torch.Tensor = None) -> None:
        if reliable is None or not self.gate:
            reliable = torch.ones(len(targets), dtype=torch.bool, device=x.device)
        # a distributed job updates every rank's memory with the whole global batch (rank order)
        x, targets = comm.all_gather_cat(x), comm.all_gather_cat(targets)
        reliable = comm.all_gather_cat(reliable.to(torch.uint8)).bool()
        mem, mu, k = self.features.clone(), self.old_weight, self.num_classes
        x = x.to(mem.dtype)
        classes, inverse, counts = torch.unique(targets, return_inverse=True, return_counts=True)
        order = torch.argsort(inverse, stable=True)                          # grouped, batch order inside
        starts = torch.cumsum(counts, 0) - counts
        pos = torch.arange(len(order), device=x.device) - starts[inverse[order]]
        padded = torch.zeros(len(classes), int(counts.max()), x.shape[1], dtype=x.dtype, device=x.device)
        padded[inverse[order], pos] = x[order]
        valid = torch.zeros(padded.shape[:2], dtype=torch.bool, device=x.device)
        valid[inverse[order], pos] = True
        gate = torch.zeros_like(valid)
        gate[inverse[order], pos] = reliable[order].bool()
        selected, mean_dist = diversity_selection(padded, valid, gate, self.num_marginal)
        slot = selected.long().cumsum(1)                                     # 1..S in batch order
        cls, col = torch.nonzero(selected, as_tuple=True)
        rows = classes[cls] + slot[cls, col] * k
        mem[rows] = mu * mem[rows] + (1 - mu) * padded[cls, col]
        medoid = padded[torch.arange(len(classes), device=x.device), mean_dist.argmin(1)]
        mem[classes] = mu * mem[classes] + (1 - mu) * medoid
        if self.renormalize:
            touched = torch.cat([rows, classes])
            mem[touched] = F.normalize(mem[touched], dim=1)
        self.features = mem


@MEMORY_REGISTRY.register(name="DiversityMemory")
def build_diversity_memory(cfg, dim: int) -> DiversityMemory:
    m = cfg.MODEL.MEMORY
    return DiversityMemory(dim, m.NUM_MARGINAL, m.TEMP, m.OLD_WEIGHT, m.RELIABILITY_GATE, m.RENORMALIZE)
