"""Tensors whose size follows the data (one row per cluster) and must follow a checkpoint when loaded."""
import torch
from torch import nn


def resize_like_checkpoint(module: nn.Module, state_dict: dict, prefix: str, names) -> None:
    """Give ``module.<name>`` the shape of its entry in ``state_dict`` so that ``load_state_dict`` can
    copy it (call from ``_load_from_state_dict`` before the default implementation)."""
    for name in names:
        key = prefix + name
        if key in state_dict:
            tensor: torch.Tensor = getattr(module, name)
            tensor.data = torch.empty_like(state_dict[key], device=tensor.device)
