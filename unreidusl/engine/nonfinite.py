"""What a training step does when its loss is NaN or Inf (``SOLVER.SKIP_NONFINITE_LOSS``)."""
import logging
from typing import Callable, Dict, Optional

import torch

from ..utils import comm

logger = logging.getLogger(__name__)

__all__ = ["NonFiniteLossGuard"]


class NonFiniteLossGuard:
    """Stops training at a non-finite loss (default), or skips such steps.

    Stop: ``FloatingPointError`` naming the epoch, the iteration, every loss term and the last good
    checkpoint to resume from.  Skip (``max_skips`` > 0): the step leaves no trace — no optimiser
    step, its gradients dropped, and the model's buffers (BatchNorm statistics, cluster memory, which
    the forward updates) put back to their values before the forward — for up to ``max_skips``
    consecutive steps; the next one stops as above.  ``consecutive`` is checkpointed."""

    def __init__(self, max_skips: int = 0,
                 last_checkpoint: Callable[[], Optional[str]] = lambda: None) -> None:
        if max_skips < 0:
            raise ValueError(f"SOLVER.MAX_NONFINITE_SKIPS must be >= 0, got {max_skips}")
        self.max_skips, self.last_checkpoint = max_skips, last_checkpoint
        self.consecutive = 0
        self._buffers: Dict[str, torch.Tensor] = {}

    def before_forward(self, model: torch.nn.Module) -> None:
        if self.max_skips > 0:
            self._buffers = {name: b.clone() for name, b in model.named_buffers()}

    def check(self, trainer, losses: Dict[str, torch.Tensor]) -> bool:
        """True: the loss is finite, apply the step.  False: skip it (already undone)."""
        total = sum(losses.values())
        # all ranks decide together: one rank's NaN reaches every rank's gradients through DDP
        if not comm.all_reduce_sum_((~torch.isfinite(total.detach())).float().reshape(1)).item():
            self.consecutive = 0
            return True
        terms = {k: float(v.detach()) for k, v in losses.items()}
        where = _where(trainer)
        if self.consecutive >= self.max_skips:
            skipped = f" after {self.consecutive} consecutive skipped steps" if self.max_skips else ""
            raise FloatingPointError(
                f"Loss is {float(total.detach())} at {where}{skipped}; loss terms: {terms}. {self._resume()}. Lower "
                f"SOLVER.BASE_LR or check the data, or skip such steps with SOLVER.SKIP_NONFINITE_LOSS True "
                f"(at most SOLVER.MAX_NONFINITE_SKIPS in a row).")
        self.consecutive += 1
        trainer.optimizer.zero_grad(set_to_none=True)
        for name, value in self._buffers.items():
            owner, _, attr = name.rpartition(".")
            setattr(trainer.model.get_submodule(owner), attr, value)
        logger.warning("Skipped the step at %s: loss terms %s (%d of at most %d in a row)", where, terms,
                       self.consecutive, self.max_skips)
        return False

    def check_state(self, trainer) -> None:
        """After the optimiser step: stop with ``FloatingPointError`` when a parameter or a floating
        buffer (e.g. BatchNorm statistics, the cluster memory) is no longer finite although the loss
        was, naming the tensors and the last good checkpoint.  One reduction over the model per
        step (NaN and Inf propagate through the sums)."""
        model = trainer.model
        tensors = [t for t in list(model.parameters()) + list(model.buffers()) if t.is_floating_point()]
        if not tensors:
            return
        total = torch.stack([t.detach().float().sum() for t in tensors]).sum()
        if comm.all_reduce_sum_((~torch.isfinite(total)).float().reshape(1)).item() == 0:
            return
        bad = [name for name, t in list(model.named_parameters()) + list(model.named_buffers())
               if t.is_floating_point() and not torch.isfinite(t.detach()).all()]
        raise FloatingPointError(
            f"The model became non-finite at {_where(trainer)} although the loss was finite: "
            f"{', '.join(bad[:5]) or 'on another rank'}{' ...' if len(bad) > 5 else ''}. {self._resume()}. "
            f"Lower SOLVER.BASE_LR, or check MODEL.MEMORY / MEAN_TEACHER settings.")

    def _resume(self) -> str:
        last = self.last_checkpoint()
        return (f"the last good checkpoint is {last}: --resume continues from it" if last
                else "no checkpoint has been written yet")


def _where(trainer) -> str:
    return f"epoch {trainer.epoch + 1} iteration {trainer.inner_iter + 1} (global iteration {trainer.iter})"
