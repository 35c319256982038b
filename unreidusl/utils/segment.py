"""Group reductions without Python loops over groups (used by HDC and the camera-aware memory)."""
import torch

__all__ = ["segment_argmax"]


def segment_argmax(values: torch.Tensor, groups: torch.Tensor, num_groups: int):
    """Per row r and group g: ``max_{n: groups[n] = g} values[r, n]`` and the first n reaching it.

    values: [R, N] (or [N], treated as one row); groups: [N] int64 in 0..num_groups-1.
    Returns ``(best [R, G], index [R, G])``; an empty group has best = -inf and index = N."""
    squeeze = values.dim() == 1
    v = values.unsqueeze(0) if squeeze else values
    r, n = v.shape
    g = groups.to(v.device).long().unsqueeze(0).expand(r, n)
    best = torch.full((r, num_groups), float("-inf"), dtype=v.dtype, device=v.device)
    best.scatter_reduce_(1, g, v, reduce="amax", include_self=True)
    cols = torch.arange(n, device=v.device).unsqueeze(0).expand(r, n)
    cand = torch.where(v == best.gather(1, g), cols, torch.full_like(cols, n))
    index = torch.full((r, num_groups), n, dtype=torch.long, device=v.device)
    index.scatter_reduce_(1, g, cand, reduce="amin", include_self=True)
    return (best[0], index[0]) if squeeze else (best, index)
