"""Process-group helpers for ``torch.distributed`` (all of them are no-ops in a single process).

Every collective here must be called by all ranks in the same order; the trainer calls them at
fixed points (feature extraction, clustering, memory update, checkpoints, evaluation)."""
from contextlib import contextmanager
from typing import Any, List

import torch
import torch.distributed as dist

__all__ = ["is_distributed", "get_world_size", "get_rank", "is_main_process",
           "synchronize", "main_process_first", "broadcast_object", "all_gather_cat",
           "all_reduce_sum_", "all_reduce_grads", "broadcast_buffers_"]


def is_distributed() -> bool:
    """True when a process group of more than one process is initialised."""
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def get_world_size() -> int:
    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


def get_rank() -> int:
    return dist.get_rank() if dist.is_available() and dist.is_initialized() else 0


def is_main_process() -> bool:
    """Rank 0: the only process that logs to files and writes checkpoints."""
    return get_rank() == 0


def _device() -> torch.device:
    """Device of the collectives' tensors: CUDA for NCCL, CPU for gloo."""
    if dist.get_backend() == dist.Backend.NCCL:
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


def synchronize() -> None:
    """Barrier across all ranks."""
    if is_distributed():
        if dist.get_backend() == dist.Backend.NCCL:
            dist.barrier(device_ids=[torch.cuda.current_device()])
        else:
            dist.barrier()


@contextmanager
def main_process_first():
    """Rank 0 runs the block first (e.g. generating or caching a dataset), the others after it."""
    if not is_main_process():
        synchronize()
    yield
    if is_main_process():
        synchronize()


def broadcast_object(obj: Any, src: int = 0) -> Any:
    """``src``'s picklable ``obj`` on every rank."""
    if not is_distributed():
        return obj
    box = [obj if get_rank() == src else None]
    dist.broadcast_object_list(box, src=src, device=_device())
    return box[0]


def all_gather_cat(tensor: torch.Tensor) -> torch.Tensor:
    """Concatenation along dim 0 of every rank's ``tensor`` in rank order; the ranks' row counts
    may differ (each is padded to the largest for the exchange, the padding is cut off)."""
    if not is_distributed():
        return tensor
    world, device = get_world_size(), _device()
    local = tensor.to(device)
    sizes = [torch.zeros(1, dtype=torch.long, device=device) for _ in range(world)]
    dist.all_gather(sizes, torch.tensor([len(local)], dtype=torch.long, device=device))
    sizes = [int(s) for s in sizes]
    longest = max(sizes)
    padded = local.new_zeros((longest,) + tuple(local.shape[1:]))
    padded[:len(local)] = local
    parts = [torch.empty_like(padded) for _ in range(world)]
    dist.all_gather(parts, padded)
    return torch.cat([p[:n] for p, n in zip(parts, sizes)]).to(tensor.device)


def all_reduce_sum_(tensor: torch.Tensor) -> torch.Tensor:
    """In-place sum over ranks (``tensor`` on any device)."""
    if not is_distributed():
        return tensor
    device = _device()
    work = tensor.to(device)
    dist.all_reduce(work)
    if work is not tensor:
        tensor.copy_(work)
    return tensor


def _coalesced(tensors: List[torch.Tensor], collective) -> None:
    """Run ``collective(flat)`` on one flat copy of ``tensors`` per dtype and write the result back."""
    groups = {}
    for t in tensors:
        groups.setdefault(t.dtype, []).append(t)
    for group in groups.values():
        flat = torch.cat([t.reshape(-1) for t in group]).to(_device())
        collective(flat)
        offset = 0
        for t in group:
            t.copy_(flat[offset:offset + t.numel()].view_as(t))
            offset += t.numel()


def all_reduce_grads(params: List[torch.nn.Parameter]) -> None:
    """Average the gradients of ``params`` over the ranks."""
    if is_distributed():
        world = get_world_size()
        _coalesced([p.grad for p in params if p.grad is not None],
                   lambda flat: (dist.all_reduce(flat), flat.div_(world)))


def broadcast_buffers_(module: torch.nn.Module, src: int = 0) -> None:
    """Overwrite every rank's buffers of ``module`` (BatchNorm statistics, ...) with ``src``'s."""
    if is_distributed():
        _coalesced([b for b in module.buffers() if b.numel()], lambda flat: dist.broadcast(flat, src))
