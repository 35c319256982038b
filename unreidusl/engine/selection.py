"""Optimiser-state policy and model selection hooks."""
import logging
from typing import Optional

import numpy as np
from sklearn.metrics import normalized_mutual_info_score

from ..utils import comm
from ..utils.checkpoint import atomic_torch_save
from .train_loop import HookBase

logger = logging.getLogger(__name__)

CRITERIA = ("last", "cluster_stability", "test_mAP")


class ResetOptimizerEachEpoch(HookBase):
    """Before every epoch, forget the optimiser state (AuxUSLReID's per-epoch Adam rebuild)."""

    def before_epoch(self) -> None:
        self.trainer.optimizer.state.clear()


def label_stability(previous: np.ndarray, current: np.ndarray) -> float:
    """NMI between two pseudo-labellings of the same samples (outliers as singletons)."""
    def singletons(labels):
        labels = labels.copy()
        noise = labels < 0
        labels[noise] = labels.max(initial=-1) + 1 + np.arange(noise.sum())
        return labels
    return float(normalized_mutual_info_score(singletons(previous), singletons(current)))


class BestCheckpointer(HookBase):
    """Keeps ``model_best.pth`` (model weights, epoch, score) by a label-free or test criterion.

    ``cluster_stability``: when epoch e's pseudo-labels are made, NMI(labels_{e−1}, labels_e) scores
    the model that produced labels_e, i.e. the weights after epoch e−1.
    ``test_mAP``: the mAP of each evaluation (test-set selection, opt-in)."""

    def __init__(self, criterion: str, path: str, labels_source) -> None:
        if criterion not in CRITERIA[1:]:
            raise ValueError(f"SOLVER.SELECT_BEST must be one of {CRITERIA}, got {criterion!r}")
        self.criterion, self.path, self.labels_source = criterion, path, labels_source
        self.best = -float("inf")
        self._previous: Optional[np.ndarray] = None

    def _consider(self, score: float, epoch: int) -> None:
        if score > self.best:
            self.best = score
            if not comm.is_main_process():  # every rank tracks the score, rank 0 writes
                return
            atomic_torch_save({"model": self.trainer.model.state_dict(), "epoch": epoch,
                               "criterion": self.criterion, "score": score}, self.path)
            logger.info("New best model by %s = %.4f (after epoch %d) saved to %s",
                        self.criterion, score, epoch, self.path)

    def before_train(self) -> None:
        # after a resume, the restored pseudo-labels are the previous epoch's: compare against them
        if self._previous is None:
            self._previous = self.labels_source()

    def before_epoch(self) -> None:
        if self.criterion != "cluster_stability":
            return
        labels = self.labels_source()
        if self._previous is not None and labels is not None and labels is not self._previous:
            score = label_stability(self._previous, labels)
            self.trainer.storage.put_scalar("cluster/stability", score)
            self._consider(score, self.trainer.epoch)
        self._previous = labels

    def after_epoch(self) -> None:
        if self.criterion != "test_mAP":
            return
        latest = self.trainer.storage.latest().get("test/mAP")
        if latest is not None and latest[1] == self.trainer.storage.iter:
            self._consider(latest[0], self.trainer.epoch + 1)

    def state_dict(self) -> dict:
        return {"best": self.best}

    def load_state_dict(self, state: dict) -> None:
        self.best = float(state.get("best", -float("inf")))
