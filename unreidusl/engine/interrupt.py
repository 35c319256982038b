"""Checkpoint, then stop, on SIGTERM / SIGINT (``SOLVER.CHECKPOINT_ON_SIGNAL``)."""
import logging
import signal
import threading
from typing import Optional

import torch

from ..utils import comm
from .train_loop import HookBase

logger = logging.getLogger(__name__)

__all__ = ["StopOnSignal", "TrainingInterrupted"]


class TrainingInterrupted(RuntimeError):
    """Training stopped on a signal after writing a checkpoint; ``--resume`` continues from it."""

    def __init__(self, signum: int, path: str, where: str) -> None:
        self.signum, self.path = signum, path
        super().__init__(f"Stopped by {signal.Signals(signum).name} {where}. Checkpoint saved to {path}; "
                         f"run the same command with --resume to continue exactly from there.")


class StopOnSignal(HookBase):
    """While training, SIGTERM and SIGINT only set a flag.  At the next step boundary (before the next
    step, or after an epoch's hooks) the full state is saved to ``model_interrupted.pth`` (a mid-epoch
    checkpoint before a step, so the resume continues at exactly that step) and
    :class:`TrainingInterrupted` is raised.  A second signal gets the previous handler at once
    (SIGINT: KeyboardInterrupt, SIGTERM: termination) for a run that must stop without waiting.

    Under torch.distributed the ranks decide together at every boundary (a signal that reached any
    rank stops all of them at the same step), so a signal sent to one process cannot leave the
    others waiting in a collective.

    Place it after the hooks whose ``after_epoch`` changes the state (scheduler, checkpointer)."""

    SIGNALS = (signal.SIGTERM, signal.SIGINT)

    def __init__(self) -> None:
        self.received: Optional[int] = None
        self._previous: dict = {}

    def before_train(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            logger.warning("Training runs outside the main thread: SIGTERM/SIGINT will not be caught")
            return
        self._previous = {s: signal.signal(s, self._handle) for s in self.SIGNALS}

    def after_train(self) -> None:
        for s, handler in self._previous.items():
            signal.signal(s, handler)
        self._previous = {}

    def _handle(self, signum: int, frame) -> None:
        if self.received is not None:
            signal.signal(signum, self._previous.get(signum, signal.SIG_DFL))
            signal.raise_signal(signum)
            return
        self.received = signum
        logger.warning("Received %s: saving a checkpoint at the end of the current step, then stopping "
                       "(send it again to stop at once, without a checkpoint)", signal.Signals(signum).name)

    def _agreed(self) -> bool:
        """Whether any rank received a signal (this rank alone when not distributed)."""
        if not comm.is_distributed():
            return self.received is not None
        anyone = comm.all_reduce_sum_(torch.tensor([float(self.received is not None)])).item() > 0
        if anyone and self.received is None:
            self.received = signal.SIGTERM
            logger.warning("Another process of this job received a signal: stopping with it")
        return anyone

    def before_step(self) -> None:
        if self._agreed():
            t = self.trainer
            self._stop(True, f"before iteration {t.inner_iter + 1} of epoch {t.epoch + 1}")

    def after_epoch(self) -> None:
        t = self.trainer
        if t.epoch + 1 < t.max_epochs and self._agreed():
            self._stop(False, f"after epoch {t.epoch + 1}")

    def _stop(self, mid_epoch: bool, where: str) -> None:
        path = self.trainer.save_checkpoint("model_interrupted", mid_epoch=mid_epoch)
        raise TrainingInterrupted(self.received, path, where)
