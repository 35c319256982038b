"""Epoch-aware hook-based training loop (detectron2's TrainerBase, with epochs of variable length)."""
import logging
import weakref
from contextlib import contextmanager
from typing import Dict, List, Optional

import torch

from ..utils import comm
from ..utils.events import EventStorage
from ..utils.registry import Registry
from .amp import MixedPrecision
from .nonfinite import NonFiniteLossGuard

logger = logging.getLogger(__name__)

HOOK_REGISTRY = Registry("HOOK")
HOOK_REGISTRY.__doc__ = """Extra hooks: called as ``obj(cfg, trainer)``; return a ``HookBase``.
Names listed in ``cfg.HOOKS`` are appended after the default hooks."""


class HookBase:
    """Override any of the six callbacks; ``self.trainer`` is set by ``TrainerBase.register_hooks``."""

    trainer: "TrainerBase"

    def before_train(self) -> None: ...
    def after_train(self) -> None: ...
    def before_epoch(self) -> None: ...
    def after_epoch(self) -> None: ...
    def before_step(self) -> None: ...
    def after_step(self) -> None: ...

    def resume_epoch(self) -> None:
        """Called instead of ``before_epoch`` when training resumes inside an epoch from a mid-epoch
        checkpoint: rebuild what ``before_epoch`` built (e.g. the data loader, positioned at
        ``trainer.inner_iter``) from the restored state, without changing that state."""

    def state_dict(self) -> dict:
        return {}

    def load_state_dict(self, state: dict) -> None: ...


class TrainerBase:
    """Runs ``for epoch: before_epoch; for it in range(iters_per_epoch): step; after_epoch``.

    ``iters_per_epoch`` is read every iteration, so a ``before_epoch`` hook may change it.
    ``iter`` counts iterations since the start of training (it survives resumes).
    ``start_inner_iter`` (set by a resume from a mid-epoch checkpoint): the first epoch is already
    prepared and that many of its steps are done, so it calls ``resume_epoch`` instead of
    ``before_epoch`` and continues from that step.
    """

    def __init__(self) -> None:
        self._hooks: List[HookBase] = []
        self.iter = 0
        self.epoch = 0
        self.inner_iter = 0
        self.start_epoch = 0
        self.max_epochs = 0
        self.iters_per_epoch = 0
        self.start_inner_iter: Optional[int] = None
        self.storage: Optional[EventStorage] = None

    def register_hooks(self, hooks: List[Optional[HookBase]]) -> None:
        for h in hooks:
            if h is None:
                continue
            h.trainer = weakref.proxy(self)
            self._hooks.append(h)

    @property
    def hooks(self) -> List[HookBase]:
        return list(self._hooks)

    def train(self, start_epoch: int, max_epochs: int) -> None:
        self.start_epoch, self.max_epochs = start_epoch, max_epochs
        self.storage = self.storage or EventStorage()
        self.storage.iter = self.iter
        logger.info("Starting training from epoch %d of %d", start_epoch, max_epochs)
        self.before_train()
        try:
            for self.epoch in range(start_epoch, max_epochs):
                self.storage.epoch = self.epoch
                if self.start_inner_iter is None:
                    self.inner_iter = 0
                    self.before_epoch()
                else:
                    self.inner_iter, self.start_inner_iter = self.start_inner_iter, None
                    self.resume_epoch()
                while self.inner_iter < self.iters_per_epoch:
                    self.before_step()
                    self.run_step()
                    self.after_step()
                    self.inner_iter += 1
                    self.iter += 1
                    self.storage.iter = self.iter
                self.after_epoch()
            self.epoch = max_epochs
        finally:
            self.after_train()

    def before_train(self) -> None:
        for h in self._hooks:
            h.before_train()

    def after_train(self) -> None:
        for h in self._hooks:
            h.after_train()

    def before_epoch(self) -> None:
        for h in self._hooks:
            h.before_epoch()

    def after_epoch(self) -> None:
        for h in self._hooks:
            h.after_epoch()

    def resume_epoch(self) -> None:
        for h in self._hooks:
            h.resume_epoch()

    def before_step(self) -> None:
        for h in self._hooks:
            h.before_step()

    def after_step(self) -> None:
        for h in self._hooks:
            h.after_step()

    def run_step(self) -> None:
        raise NotImplementedError


class SimpleTrainer(TrainerBase):
    """One optimisation step per iteration on the next batch of ``self.data_loader``."""

    def __init__(self, model: torch.nn.Module, optimizer: torch.optim.Optimizer) -> None:
        super().__init__()
        self.model = model
        self.optimizer = optimizer
        self._data_loader = None
        self._data_iter = None
        # Backbone chunk size for gradient accumulation (0: the whole batch at once).
        self.forward_batch_size = 0
        # Stop at a NaN/Inf loss, or skip such steps (engine/nonfinite.py).
        self.nonfinite = NonFiniteLossGuard()
        # The module that runs the training forward: ``model`` or its DistributedDataParallel wrapper.
        self.train_module = model
        # Mixed precision: autocast around the forward, loss scaling for float16 (engine/amp.py).
        self.amp = MixedPrecision()

    @property
    def data_loader(self):
        return self._data_loader

    @data_loader.setter
    def data_loader(self, loader) -> None:
        self._data_loader, self._data_iter = loader, None

    def _next_batch(self):
        """The next batch; a finite loader is restarted when exhausted."""
        if self._data_loader is None:
            raise RuntimeError("No training data loader: a hook must set trainer.data_loader before the step")
        for _ in range(2):
            if self._data_iter is None:
                self._data_iter = iter(self._data_loader)
            try:
                return next(self._data_iter)
            except StopIteration:
                self._data_iter = None
        raise RuntimeError("The training data loader yields no batch (is the pseudo-labelled set empty?)")

    def run_step(self) -> None:
        self.model.train()
        batch = self._next_batch()
        self.optimizer.zero_grad(set_to_none=True)
        self.nonfinite.before_forward(self.model)
        losses = self._forward_backward(batch)
        total = sum(losses.values())
        if not self.nonfinite.check(self, losses):
            return
        self.amp.step(self.optimizer)
        self.nonfinite.check_state(self)
        self.storage.put_scalars(total_loss=total.item(), **{k: v.item() for k, v in losses.items()})
        self.storage.put_scalar("lr", self.optimizer.param_groups[0]["lr"])

    def _forward_backward(self, batch) -> Dict[str, torch.Tensor]:
        """Losses of the batch, with their gradients accumulated into the parameters.

        With ``forward_batch_size`` smaller than the batch, the backbone runs in chunks of that size
        (its BatchNorm sees one chunk, like one GPU of a multi-GPU recipe) and only one chunk's graph
        is alive at a time, yet the gradient equals that of the whole batch: (1) per-sample outputs
        of every chunk without a graph, (2) the batch loss backpropagated to those outputs,
        (3) each chunk re-run and backpropagated with its slice of that gradient."""
        size = self.forward_batch_size
        if not size or len(batch["targets"]) <= size:
            with self.amp.autocast():
                losses = self.train_module(batch)
            self.amp.backward(sum(losses.values()))
            return losses
        model = self.model
        images = batch["images"].to(model.device, non_blocking=True)
        targets = batch["targets"].to(model.device, non_blocking=True)
        chunks = images.split(size)
        with torch.no_grad(), _frozen_running_stats(model), self.amp.autocast():
            parts = [model.per_sample(chunk) for chunk in chunks]
        keys = model.per_sample_grad_keys
        # the batch losses (neck, memory, losses: cheap) run in float32 even under autocast
        full = {k: torch.cat([p[k] for p in parts]).float().requires_grad_(k in keys) for k in parts[0]}
        # further batch fields a model's batch_losses needs (e.g. 3C's camera ids)
        extra = {k: batch[k].to(model.device, non_blocking=True) for k in model.batch_keys}
        losses = model.batch_losses(full, targets, **extra)
        self.amp.backward(sum(losses.values()))
        for i, chunk in enumerate(chunks):
            with self.amp.autocast():
                out = model.per_sample(chunk)
            rows = slice(i * size, i * size + len(chunk))
            torch.autograd.backward([out[k] for k in keys], [full[k].grad[rows] for k in keys])
        if self.train_module is not model:  # the chunks ran outside DDP's forward: average here
            comm.all_reduce_grads([p for p in model.parameters() if p.requires_grad])
        return losses


@contextmanager
def _frozen_running_stats(model: torch.nn.Module):
    """Restore every BatchNorm buffer on exit (the gradient-free pass must not update them)."""
    saved = [(b, b.clone()) for m in model.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)
             for b in m.buffers()]
    try:
        yield
    finally:
        for buffer, value in saved:
            buffer.copy_(value)
