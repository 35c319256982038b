"""The identity-discovery report of a training run's last epoch (``CLUSTER.REPORT True``).

:class:`ClusterReportHook` runs after the pseudo-label hook at the start of the last epoch (or
when a run resumes inside it): it takes the pseudo-labels that epoch trains on, extracts the
clustering features of the current model (the ones those labels were computed from when the
last epoch clustered anew, i.e. ``CLUSTER.PERIOD`` 1), and writes the report of
``apps/report.py`` into ``OUTPUT_DIR/clusters/``: ``clusters.csv``, ``report.html``,
``sizes.png``, ``sheets/`` (and the training curves so far). With ground truth (a synthetic or
labelled training set) it has the pairwise P / R / F, NMI and the worst merges and splits.
All ranks extract their shard of the features; rank 0 writes. Registered in ``HOOK_REGISTRY``
as ``ClusterReportHook``: the trainer adds it when ``CLUSTER.REPORT`` is True; naming it in
``HOOKS`` as well is harmless (a second instance does nothing).
"""
import logging
import os

import numpy as np

from ..utils import comm
from .train_loop import HOOK_REGISTRY, HookBase

__all__ = ["ClusterReportHook"]

logger = logging.getLogger(__name__)


@HOOK_REGISTRY.register()
class ClusterReportHook(HookBase):
    """See the module docstring; ``ClusterReportHook(cfg, trainer)``."""

    def __init__(self, cfg, trainer=None) -> None:
        self.cfg = cfg
        self.out_dir = os.path.join(cfg.OUTPUT_DIR, "clusters") if cfg.OUTPUT_DIR else ""
        self.done = False

    def _pseudo_label_hook(self):
        for h in self.trainer.hooks:
            if type(h).__name__ == "PseudoLabelHook":
                return h
        return None

    def _first(self) -> bool:
        for h in self.trainer.hooks:
            if type(h) is type(self):
                return h is self
        return True

    def before_epoch(self) -> None:
        t = self.trainer
        if t.epoch == t.max_epochs - 1 and not self.done and self._first():
            self.write()

    resume_epoch = before_epoch

    def write(self) -> None:
        from ..apps.common import cluster_features  # noqa: PLC0415 - apps import the engine
        from ..apps.report import write_cluster_report  # noqa: PLC0415
        from ..cluster import cluster_quality, cluster_summary  # noqa: PLC0415
        from ..utils.charts import curves_from_metrics  # noqa: PLC0415

        t, cfg = self.trainer, self.cfg
        hook = self._pseudo_label_hook()
        if hook is None or hook.labels is None or not self.out_dir:
            logger.warning("CLUSTER.REPORT: no pseudo-labels to report")
            self.done = True
            return
        samples, labels = hook.samples, np.asarray(hook.labels)
        features = cluster_features(t.model, cfg, samples, t.epoch)   # all ranks: sharded loader
        if comm.is_main_process():
            truth = getattr(hook, "truth", None)
            metrics = dict(cluster_summary(labels))
            if truth is not None:
                metrics.update(cluster_quality(labels, truth))
            eps = getattr(hook, "stats", {}).get("eps")
            if eps is not None:
                metrics["eps"] = float(eps)
            distance = getattr(hook, "distance", None)
            info = {"epoch": t.epoch + 1, "distance": "features" if distance is None
                    else type(distance).__name__, "clusterer": type(hook.clusterer).__name__}
            metrics_json = os.path.join(cfg.OUTPUT_DIR, "metrics.json")
            curves = curves_from_metrics(metrics_json) if os.path.isfile(metrics_json) else None
            try:
                write_cluster_report(self.out_dir, samples, labels, features, metrics, truth,
                                     f"Pseudo-labels of epoch {t.epoch + 1} (last)", curves, info=info)
            except Exception as e:  # a report must never stop a training run
                logger.warning("CLUSTER.REPORT: could not write the report: %s", e)
        self.done = True

    def state_dict(self) -> dict:
        return {"done": self.done} if self.done else {}

    def load_state_dict(self, state: dict) -> None:
        self.done = bool(state.get("done", False))
