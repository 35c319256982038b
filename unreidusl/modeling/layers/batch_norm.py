"""BatchNorm variants chosen by ``MODEL.SYNC_BN`` / ``MODEL.BN_VIRTUAL_SPLITS``."""
import logging

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

from ...utils import comm

logger = logging.getLogger(__name__)

__all__ = ["SplitBatchNorm", "convert_batch_norm"]


class SplitBatchNorm(_BatchNorm):
    """BatchNorm whose training batch of N samples is normalised as ``splits`` consecutive chunks of
    N/splits samples, each with its own mean and variance ("ghost" / virtual batch normalisation):
    what each GPU of a ``splits``-GPU job computes. The running statistics move once per forward,
    towards the mean of the chunks' statistics: r ← (1−m)·r + m·mean_g(s_g) (``stats="mean"``), or
    towards the first chunk's only, r ← (1−m)·r + m·s_0 (``stats="first"``: ``nn.DataParallel``, where
    only the replica on the first GPU writes its running statistics back). Evaluation is plain BN.
    All chunks are normalised by one ``batch_norm`` call over the input viewed as
    [N/splits, splits·C, ...] (channel g·C + c = channel c of chunk g)."""

    def __init__(self, num_features: int, splits: int, stats: str = "mean", **kwargs) -> None:
        super().__init__(num_features, **kwargs)
        if stats not in ("mean", "first"):
            raise ValueError(f"MODEL.BN_VIRTUAL_STATS must be 'mean' or 'first', got {stats!r}")
        self.splits, self.stats = int(splits), stats

    def _check_input_dim(self, x: torch.Tensor) -> None:
        if x.dim() < 2:
            raise ValueError(f"expected at least 2-D input, got {x.dim()}-D")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        g = self.splits
        if not self.training or g == 1:
            return super().forward(x)
        n, c, rest = x.shape[0], x.shape[1], tuple(x.shape[2:])
        if n % g:
            raise ValueError(f"MODEL.BN_VIRTUAL_SPLITS={g} does not divide the BatchNorm batch of {n}: use a "
                             f"SOLVER.IMS_PER_BATCH (per process) that is a multiple of it")
        grouped = x.reshape(g, n // g, c, *rest).transpose(0, 1).reshape(n // g, g * c, *rest)
        track = self.track_running_stats
        mean = self.running_mean.repeat(g) if track else None
        var = self.running_var.repeat(g) if track else None
        momentum = self.momentum
        if track:
            self.num_batches_tracked.add_(1)
            if momentum is None:
                momentum = 1.0 / float(self.num_batches_tracked)
        weight = None if self.weight is None else self.weight.repeat(g)
        bias = None if self.bias is None else self.bias.repeat(g)
        y = F.batch_norm(grouped, mean, var, weight, bias, True, momentum or 0.0, self.eps)
        if track:
            pick = (lambda v: v.view(g, c).mean(0)) if self.stats == "mean" else (lambda v: v.view(g, c)[0])
            with torch.no_grad():
                self.running_mean.copy_(pick(mean))
                self.running_var.copy_(pick(var))
        return y.reshape(n // g, g, c, *rest).transpose(0, 1).reshape(x.shape)


def _to_split(module: nn.Module, splits: int, stats: str) -> nn.Module:
    """``module`` with every BatchNorm replaced by a SplitBatchNorm sharing its parameters and buffers."""
    if isinstance(module, _BatchNorm):
        new = SplitBatchNorm(module.num_features, splits, stats, eps=module.eps, momentum=module.momentum,
                             affine=module.affine, track_running_stats=module.track_running_stats)
        if module.affine:
            new.weight, new.bias = module.weight, module.bias
        if module.track_running_stats:
            new.running_mean, new.running_var = module.running_mean, module.running_var
            new.num_batches_tracked = module.num_batches_tracked
        new.train(module.training)
        return new
    for name, child in module.named_children():
        module.add_module(name, _to_split(child, splits, stats))
    return module


def convert_batch_norm(model: nn.Module, cfg, device: torch.device) -> nn.Module:
    """Apply ``MODEL.SYNC_BN`` (distributed CUDA jobs) or ``MODEL.BN_VIRTUAL_SPLITS`` to ``model``."""
    splits, sync = int(cfg.MODEL.BN_VIRTUAL_SPLITS), cfg.MODEL.SYNC_BN
    if splits < 1:
        raise ValueError(f"MODEL.BN_VIRTUAL_SPLITS must be >= 1, got {splits}")
    if sync and splits > 1:
        raise ValueError("MODEL.SYNC_BN (statistics over all processes) and MODEL.BN_VIRTUAL_SPLITS > 1 "
                         "(statistics per chunk) contradict each other: set one of them")
    if splits > 1:
        return _to_split(model, splits, cfg.MODEL.BN_VIRTUAL_STATS)
    if not sync:
        return model
    if device.type != "cuda":
        raise ValueError("MODEL.SYNC_BN needs CUDA (torch's SyncBatchNorm has no CPU kernel); set it to False "
                         "on CPU")
    if not comm.is_distributed():
        logger.info("MODEL.SYNC_BN has no effect in a single process")
        return model
    return nn.SyncBatchNorm.convert_sync_batchnorm(model)
