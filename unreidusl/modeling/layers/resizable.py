"""Tensors whose size follows the data (one row per cluster) and must follow a checkpoint when loaded."""
import torch
from torch import nn

__all__ = ["ResizableModule"]


class ResizableModule(nn.Module):
    """An ``nn.Module`` whose parameters / buffers named in ``resizable`` take the shape of their
    checkpoint entry before ``load_state_dict`` copies them (their size follows the number of
    clusters, which a resumed run does not know yet)."""

    resizable: tuple = ()

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        for name in self.resizable:
            key = prefix + name
            if key in state_dict:
                tensor: torch.Tensor = getattr(self, name)
                tensor.data = torch.empty_like(state_dict[key], device=tensor.device)
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)
