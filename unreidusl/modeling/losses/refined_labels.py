"""NCPLR's refined soft labels (docs/methods.md): neighbour ensembles of predictions, the
global↔local exchange of GL-NCPLR, the refined targets, and NCPLR's two loss terms.

The neighbour graph holds, for the M pseudo-labelled samples, every pair with D(i, j) <= eps in the
clustering distance (self included, D_ii = 0) as CSR tensors; all computations are sparse matrix
products over the batch's rows of that graph, with no loop over samples."""
from typing import Optional, Tuple

import numpy as np
import scipy.sparse as sp
import torch
import torch.nn.functional as F
from torch import nn

from .build import LOSS_REGISTRY
from .softmax_ce import soft_cross_entropy

__all__ = ["NEIGHBOR_WEIGHTS", "neighbor_graph", "neighbor_ensemble", "exchange_labels", "refined_targets",
           "BranchContrastLoss", "RefinedLabelLoss"]

NEIGHBOR_WEIGHTS = ("similarity", "distance", "uniform")


def neighbor_graph(dist, keep: np.ndarray, eps: float) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """CSR ``(indptr [M+1], indices [nnz], distances [nnz])`` of the pairs with D <= eps among the
    samples ``keep`` (M indices into ``dist``'s N rows; graph row r is sample ``keep[r]``).

    ``dist`` is an N x N numpy array or scipy sparse matrix whose unstored entries count as 1 (as the
    DISTANCE registry returns them). The diagonal is always in the graph, with distance 0."""
    keep = np.asarray(keep, dtype=np.int64)
    m = len(keep)
    if sp.issparse(dist):
        sub = dist.tocsr()[keep][:, keep].tocoo()
        rows, cols, vals = sub.row.astype(np.int64), sub.col.astype(np.int64), sub.data.astype(np.float32)
        sel = vals <= eps
        rows, cols, vals = rows[sel], cols[sel], vals[sel]
    else:
        sub = np.asarray(dist)[np.ix_(keep, keep)]
        rows, cols = np.nonzero(sub <= eps)
        vals = sub[rows, cols].astype(np.float32)
    off = rows != cols
    diag = np.arange(m, dtype=np.int64)
    rows = np.concatenate([rows[off], diag])
    cols = np.concatenate([cols[off], diag])
    vals = np.concatenate([vals[off], np.zeros(m, np.float32)])
    order = np.lexsort((cols, rows))
    indptr = np.zeros(m + 1, dtype=np.int64)
    np.cumsum(np.bincount(rows, minlength=m), out=indptr[1:])
    return (torch.from_numpy(indptr), torch.from_numpy(cols[order]),
            torch.from_numpy(np.ascontiguousarray(vals[order])))


def first_draws(index: torch.Tensor) -> torch.Tensor:
    """Positions in ``index`` of the first draw of each distinct value. Deterministic, unlike an
    indexed assignment with repeated indices, whose winning write PyTorch leaves unspecified."""
    uniq, inverse = torch.unique(index, return_inverse=True)
    first = torch.full((len(uniq),), len(index), dtype=torch.long, device=index.device)
    return first.scatter_reduce_(0, inverse, torch.arange(len(index), device=index.device), reduce="amin")


def _batch_rows(indptr: torch.Tensor, index: torch.Tensor):
    """Positions in ``indices`` of the graph rows ``index`` and the batch row of each."""
    starts, counts = indptr[index], indptr[index + 1] - indptr[index]
    row = torch.repeat_interleave(torch.arange(len(index), device=index.device), counts)
    offset = torch.arange(int(counts.sum()), device=index.device) - torch.repeat_interleave(
        torch.cumsum(counts, 0) - counts, counts)
    return torch.repeat_interleave(starts, counts) + offset, row


def neighbor_ensemble(probs: torch.Tensor, index: torch.Tensor, graph, weight: str = "similarity",
                      temp: float = 1.0, bank: Optional[torch.Tensor] = None) -> torch.Tensor:
    """e_i = Σ_{j∈N(i)} w_ij·p_j for the batch samples with graph rows ``index`` [B].

    ``w_ij`` = softmax over N(i) of −D_ij/τ ("similarity"), +D_ij/τ ("distance", the released code)
    or 0 ("uniform" mean). ``probs`` [B, C] are the batch's predictions.

    * ``bank`` None (the released code): N(i) is restricted to the batch; a sample drawn twice counts
      once (its first draw).
    * ``bank`` [M, C]: N(i) is every graph neighbour and p_j = bank[j], the latest prediction of j;
      the caller writes the batch's predictions into the bank first."""
    if weight not in NEIGHBOR_WEIGHTS:
        raise ValueError(f"MODEL.NCPLR.NEIGHBOR_WEIGHT must be one of {NEIGHBOR_WEIGHTS}, got {weight!r}")
    indptr, indices, dists = graph
    pos, row = _batch_rows(indptr, index)
    cols, d = indices[pos], dists[pos]
    if bank is None:
        slot = torch.full((len(indptr) - 1,), -1, dtype=torch.long, device=index.device)
        first = first_draws(index)
        slot[index[first]] = first
        cols = slot[cols]
        inside = cols >= 0
        row, cols, d = row[inside], cols[inside], d[inside]
        source = probs
    else:
        source = bank
    score = {"similarity": -d / temp, "distance": d / temp, "uniform": torch.zeros_like(d)}[weight]
    w = torch.sparse_coo_tensor(torch.stack([row, cols]), score.to(source.dtype),
                                (len(index), source.shape[0]), check_invariants=False).coalesce()
    return torch.sparse.mm(torch.sparse.softmax(w, 1), source)


def _kl(p: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
    """KL(p || q) = Σ_c p_c (log p_c − log q_c) over the last dimension; 0·log 0 = 0 and the logs are
    clamped, so probabilities that underflow to 0 give no NaN."""
    tiny = torch.finfo(p.dtype).tiny
    return (p * (p.clamp_min(tiny).log() - q.clamp_min(tiny).log())).sum(-1)


def exchange_labels(ensembles: torch.Tensor, temp: float) -> torch.Tensor:
    """GL-NCPLR label iteration on ensembles [1+P, B, C] (global first):

        local → global:  w_k = exp(−KL(e_g ‖ e_k)/T),  ẽ_g = (e_g + Σ_k w_k·e_k) / (1 + Σ_k w_k)
        global → local:  w'_k = exp(−KL(e_k ‖ e_g)/T), ẽ_k = (e_k + w'_k·e_g) / (1 + w'_k)

    The weights are per-sample scalars (no gradient flows: the ensembles are detached targets)."""
    glob, parts = ensembles[0], ensembles[1:]
    w = torch.exp(-_kl(glob.unsqueeze(0), parts) / temp).unsqueeze(-1)           # [P, B, 1]
    new_glob = (glob + (w * parts).sum(0)) / (1 + w.sum(0))
    w_back = torch.exp(-_kl(parts, glob.unsqueeze(0)) / temp).unsqueeze(-1)
    new_parts = (parts + w_back * glob) / (1 + w_back)
    return torch.cat([new_glob.unsqueeze(0), new_parts])


def refined_targets(ensemble: torch.Tensor, targets: torch.Tensor, alpha: float) -> torch.Tensor:
    """ỹ = α·onehot(y) + (1 − α)·e."""
    return alpha * F.one_hot(targets, ensemble.shape[-1]).to(ensemble.dtype) + (1 - alpha) * ensemble


@LOSS_REGISTRY.register()
class BranchContrastLoss(nn.Module):
    """NCPLR's contrastive term: Σ_b λ_b · CE(memory logits of branch b, y), the InfoNCE of every
    branch against its own cluster memory (``outputs["branch_logits"]``, ``"branch_weights"``)."""

    def __init__(self, cfg=None) -> None:
        super().__init__()

    def forward(self, outputs, targets):
        return sum(w * F.cross_entropy(z, targets)
                   for w, z in zip(outputs["branch_weights"], outputs["branch_logits"]))


@LOSS_REGISTRY.register()
class RefinedLabelLoss(nn.Module):
    """NCPLR's refinement term: Σ_b λ_b · soft-CE(ỹ_b, z_b) between the classifier logits of every
    branch and its refined targets (``outputs["class_logits"]``, ``"refined_targets"``,
    ``"branch_weights"``)."""

    def __init__(self, cfg=None) -> None:
        super().__init__()

    def forward(self, outputs, targets):
        return sum(w * soft_cross_entropy(z, q) for w, z, q in zip(
            outputs["branch_weights"], outputs["class_logits"], outputs["refined_targets"]))
