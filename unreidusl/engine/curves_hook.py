"""``OUTPUT_DIR/curves.png``: the curves people look at first, redrawn after every epoch.

:class:`CurvesHook` reads the scalars of ``trainer.storage`` (those ``metrics.json`` holds): test
mAP and Rank-1 (``test/*``, from ``EvalHook``; epoch 0 = the evaluation before training), and the
pseudo-labels' pairwise precision / recall / F, NMI (with ground truth) and number of clusters
(``cluster/*``, from ``PseudoLabelHook``, at the epoch they were computed for), keeps one record
per epoch (checkpointed, so a resumed run keeps its history) and draws them with matplotlib
(``utils/charts.training_curves``) after an epoch when the last drawing is at least
``MIN_INTERVAL`` (60) seconds old, and at the end of training (a chart costs a fraction of a
second: nothing for real epochs, noticeable for seconds-long test runs). Only rank 0 draws. Registered in ``HOOK_REGISTRY`` as
``CurvesHook``: the trainer adds it by default; listing it in ``HOOKS`` as well is harmless (a
second instance does nothing).
"""
import json
import logging
import os
import time
from typing import Dict, List

from ..utils import comm
from ..utils.charts import CURVE_KEYS, training_curves
from .train_loop import HOOK_REGISTRY, HookBase

__all__ = ["CurvesHook"]

logger = logging.getLogger(__name__)


@HOOK_REGISTRY.register()
class CurvesHook(HookBase):
    """See the module docstring; ``CurvesHook(cfg, trainer)``."""

    MIN_INTERVAL = 60.0

    def __init__(self, cfg, trainer=None) -> None:
        self.path = os.path.join(cfg.OUTPUT_DIR, "curves.png") if cfg.OUTPUT_DIR else ""
        self.records: Dict[int, Dict[str, float]] = {}
        self._seen: Dict[str, int] = {}
        self._active = True
        self._last_draw = time.monotonic()

    def _fresh(self) -> Dict[str, float]:
        out = {}
        for key, (value, it) in self.trainer.storage.latest().items():
            if key in CURVE_KEYS and self._seen.get(key) != it:
                self._seen[key] = it
                out[key] = float(value)
        return out

    def _num_identities(self):
        train_set = getattr(self.trainer, "train_set", None)
        if train_set is not None and getattr(train_set, "has_train_labels", False):
            return len({s.pid for s in train_set.train})
        return None

    def before_train(self) -> None:
        self._active = _is_first(self)
        self._last_draw = time.monotonic()
        if self._active:
            fresh = self._fresh()             # the evaluation before training (epoch 0), if any
            tests = {k: v for k, v in fresh.items() if k.startswith("test/")}
            if tests and self.trainer.start_epoch == 0:
                self.records.setdefault(0, {}).update(tests)

    def _collect(self) -> None:
        """Record the scalars logged since the last call under the current epoch."""
        if not self._active or getattr(self.trainer, "storage", None) is None:
            return
        fresh = self._fresh()
        if fresh:
            self.records.setdefault(self.trainer.epoch + 1, {}).update(fresh)

    def after_epoch(self) -> None:
        if self._active:
            self._collect()
            if time.monotonic() - self._last_draw >= self.MIN_INTERVAL:
                self.draw()

    def after_train(self) -> None:
        if self._active:
            self._collect()
            self.draw()

    def history(self) -> List[Dict[str, float]]:
        return [{"epoch": e, **v} for e, v in sorted(self.records.items())]

    def draw(self) -> None:
        self._last_draw = time.monotonic()
        if not self.path or not comm.is_main_process():
            return
        try:
            training_curves(self.history(), self.path, os.path.basename(os.path.dirname(
                os.path.abspath(self.path))), self._num_identities())
        except Exception as e:  # a chart must never stop a training run
            logger.warning("Could not draw %s: %s", self.path, e)

    def state_dict(self) -> dict:
        try:      # a checkpoint written after the evaluation of this epoch holds its record
            self._collect()
        except (AttributeError, ReferenceError):   # not attached to a running trainer
            pass
        return {"records": json.dumps({str(k): v for k, v in self.records.items()})}

    def load_state_dict(self, state: dict) -> None:
        if "records" in state:
            self.records = {int(k): v for k, v in json.loads(state["records"]).items()}


def _is_first(hook: HookBase) -> bool:
    for h in hook.trainer.hooks:
        if type(h) is type(hook):
            return h is hook
    return True
