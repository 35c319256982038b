"""Hooks: each owns one side effect of training."""
import datetime
import json
import logging
import os
import time
from typing import Callable, Dict, List, Optional

import numpy as np
import torch
from tabulate import tabulate

from ..cluster import cluster_quality, cluster_summary
from ..cluster.empty_policy import EmptyClusterPolicy, PseudoLabelError
from ..cluster.pipeline import PseudoLabeler
from ..cluster.plots import cluster_size_histogram
from ..data import Sample, build_cluster_loader, build_train_loader, is_single_frame
from ..evaluation import format_metrics
from ..evaluation.extract import extract_cluster_features, extract_features
from ..utils import comm
from ..utils.feature_file import open_feature_file
from .train_loop import HookBase

logger = logging.getLogger(__name__)

__all__ = ["PseudoLabelHook", "LRScheduler", "EvalHook", "PeriodicCheckpointer", "PeriodicWriter",
           "PseudoLabelError"]


class PseudoLabelHook(HookBase):
    """Before an epoch: extract features → distance → cluster → pseudo-labelled set, sampler and
    loader → ``model.reset_pseudo_labels(result)`` with the whole ``ClusterResult`` (memory
    re-initialisation). Re-clusters every ``period`` epochs; in between it only rebuilds the loader
    for the new epoch. The clustering features come from ``model.cluster_extractor()`` (the model
    itself unless a method says otherwise, e.g. all part branches side by side). ``rounds`` counts
    the clusterings (checkpointed), so hooks can tell when the pseudo-labels changed.

    The clustering options (SCP / STS distance terms, adaptive eps, ICDBSCAN with the TOC
    cannot-links, must-link) are applied by ``cluster.pipeline.PseudoLabeler``; a cluster-size
    histogram goes to ``OUTPUT_DIR/clusters/sizes_epoch_XXX.png`` (``CLUSTER.SIZE_HISTOGRAM``)."""

    def __init__(self, cfg, train_samples: List[Sample], truth: Optional[np.ndarray]) -> None:
        self.cfg = cfg
        self.samples = list(train_samples)
        self.truth = truth
        self.period = cfg.CLUSTER.PERIOD
        self.labeler = PseudoLabeler(cfg, self.samples, cfg.OUTPUT_DIR)
        self.empty_policy = EmptyClusterPolicy(cfg)  # all outliers / one cluster (CLUSTER.EMPTY_POLICY)
        self.distance = self.labeler.distance
        self.camids = torch.tensor([s.camid for s in self.samples], dtype=torch.long)
        # images: one loader for the whole run; video clips are redrawn every epoch
        self.image_loader = build_cluster_loader(cfg, self.samples) if is_single_frame(self.samples) else None
        self.labels: Optional[np.ndarray] = None
        self.rounds = 0
        self.stats: Dict[str, float] = {}  # of the last clustering

    @property
    def clusterer(self):
        """The clusterer of the current epoch (``CLUSTER.WARMUP_NAME`` during a warm-up)."""
        return self.labeler.clusterer

    def before_epoch(self) -> None:
        t = self.trainer
        if self.labels is None or t.epoch % self.period == 0:
            self.refresh()
        self._build_loader(0)

    def resume_epoch(self) -> None:
        """Mid-epoch resume: the restored labels' loader, from the next batch; the last clustering's
        statistics go back into the storage (DynamicIterations and EvalHook read them)."""
        t = self.trainer
        t.storage.put_scalars(**{f"cluster/{k}": v for k, v in self.stats.items()})
        self._build_loader(t.inner_iter)

    def _build_loader(self, start_batch: int) -> None:
        t = self.trainer
        keep = np.flatnonzero(self.labels >= 0)
        pseudo = [self.samples[i]._replace(pid=int(self.labels[i])) for i in keep]
        t.data_loader = build_train_loader(self.cfg, pseudo, t.epoch, start_batch)

    def refresh(self) -> None:
        t = self.trainer
        start = time.perf_counter()
        features = self._features()
        self.labeler.set_epoch(t.epoch)
        # Rank 0 clusters (and writes the aux files); all ranks get its result (distributed job).
        result = comm.broadcast_object(self.empty_policy(self.labeler, features, self.labels)
                                       if comm.is_main_process() else None)
        result = result.replace(features=features, camids=self.camids)
        labels = result.labels
        stats = cluster_summary(labels)
        if self.truth is not None:
            stats.update(cluster_quality(labels, self.truth))
        if result.eps is not None:
            stats["eps"] = result.eps
        t.storage.put_scalars(**{f"cluster/{k}": v for k, v in stats.items()})
        self.stats = {k: float(v) for k, v in stats.items()}
        msg = (f"Pseudo-labels for epoch {t.epoch + 1}: {stats['num_clusters']} clusters, "
               f"{100 * stats['outlier_ratio']:.1f}% outliers")
        if self.truth is not None:
            msg += (f", pairwise P/R/F {stats['pairwise_precision']:.3f}/{stats['pairwise_recall']:.3f}/"
                    f"{stats['pairwise_f']:.3f}, NMI {stats['nmi']:.3f}, clusters/ids "
                    f"{stats['cluster_count_ratio']:.2f}")
        if result.eps is not None:
            msg += f", eps {result.eps:.4f}"
        name = "features" if self.distance is None else type(self.distance).__name__
        logger.info("%s (%s + %s, %.1fs)", msg, name, type(self.clusterer).__name__,
                    time.perf_counter() - start)
        if self.cfg.CLUSTER.SIZE_HISTOGRAM and self.cfg.OUTPUT_DIR and comm.is_main_process():
            cluster_size_histogram(
                labels, os.path.join(self.cfg.OUTPUT_DIR, "clusters", f"sizes_epoch_{t.epoch + 1:03d}.png"),
                f"epoch {t.epoch + 1}:")
        self.labels = labels
        self.rounds += 1
        t.model.reset_pseudo_labels(result)

    def _features_path(self) -> Optional[str]:
        """The clustering features' file with ``CLUSTER.FEATURES_ON_DISK`` (one per rank), else None."""
        c = self.cfg.CLUSTER
        if not c.FEATURES_ON_DISK:
            return None
        path = os.path.join(self.cfg.OUTPUT_DIR, c.FEATURES_FILE or "cluster_features.f32")
        return path if comm.get_world_size() == 1 else f"{path}.rank{comm.get_rank()}"

    def _features(self) -> torch.Tensor:
        """One feature per training sample; a tracklet's CLUSTER_SAMPLE_MULTI clip draws are averaged
        (and re-normalised), so the auxiliary N×N information stays aligned with the rows. With
        ``CLUSTER.FEATURES_ON_DISK`` the result maps a float32 file (``_features_path``); the clip
        draws go to a temporary file next to it and are averaged in chunks."""
        t = self.trainer
        model = t.model.cluster_extractor()
        path = self._features_path()
        if self.image_loader is not None:
            return extract_features(model, self.image_loader, "clustering features", out_path=path)
        draws_path = None if path is None else path + ".draws"
        feats, owner = extract_cluster_features(model, self.cfg, self.samples, t.epoch, draws_path)
        n = len(self.samples)
        if len(feats) == n:
            if path is not None:
                os.replace(draws_path, path)
            return feats
        if path is None:
            mean = torch.zeros(n, feats.shape[1]).index_add_(0, owner, feats)
            return torch.nn.functional.normalize(mean, dim=1)
        draws = len(feats) // n                           # row i·R + r is draw r of sample i
        out = torch.from_numpy(open_feature_file(path, n, feats.shape[1], "w+"))
        step = max(1, 16384 // draws)
        for s in range(0, n, step):
            e = min(n, s + step)
            out[s:e] = torch.nn.functional.normalize(feats[s * draws:e * draws].view(e - s, draws, -1).sum(1),
                                                     dim=1)
        del feats
        os.remove(draws_path)
        return out

    def state_dict(self) -> dict:
        state = {} if self.labels is None else {"labels": torch.from_numpy(self.labels),
                                                "stats": json.dumps(self.stats),
                                                "rounds": torch.tensor(self.rounds)}
        eps = self.labeler.state_dict().get("eps")
        if eps is not None:
            state["eps"] = torch.tensor(eps, dtype=torch.float64)
        return state

    def load_state_dict(self, state: dict) -> None:
        if "labels" in state:
            labels = state["labels"].numpy()
            if len(labels) != len(self.samples):
                raise ValueError(f"Checkpoint has pseudo-labels for {len(labels)} samples but the training "
                                 f"set has {len(self.samples)}: it belongs to another dataset")
            self.labels = labels
            self.stats = json.loads(state.get("stats", "{}"))
            self.rounds = int(state.get("rounds", 1))
        if "eps" in state:
            self.labeler.load_state_dict({"eps": float(state["eps"])})


class LRScheduler(HookBase):
    """Steps an epoch-level LR scheduler after every epoch."""

    def __init__(self, scheduler) -> None:
        self.scheduler = scheduler

    def after_epoch(self) -> None:
        self.scheduler.step()


class EvalHook(HookBase):
    """Evaluates before training (epoch 0), every ``period`` epochs and after the last one; prints a
    summary table of all evaluations at the end."""

    def __init__(self, period: int, eval_fn: Callable[[], Dict[str, float]], eval_at_start: bool) -> None:
        self.period, self.eval_fn, self.eval_at_start = period, eval_fn, eval_at_start
        self.history: List[Dict] = []

    def _evaluate(self, epoch: int) -> None:
        metrics = self.eval_fn()
        logger.info("%s", format_metrics(metrics, f"Evaluation after epoch {epoch}:"))
        s = self.trainer.storage
        s.put_scalars(**{f"test/{k}": v for k, v in metrics.items() if isinstance(v, float)})
        record = {"epoch": epoch, **metrics}
        f = s.latest().get("cluster/pairwise_f")
        if f is not None and epoch > 0:
            record["cluster_F"] = f[0]
        self.history.append(record)

    def before_train(self) -> None:
        if self.eval_at_start and self.trainer.start_epoch == 0 and not self.history:
            self._evaluate(0)

    def after_epoch(self) -> None:
        done = self.trainer.epoch + 1
        if self.period > 0 and (done % self.period == 0 or done == self.trainer.max_epochs):
            self._evaluate(done)

    def after_train(self) -> None:
        if not self.history:
            return
        keys = [k for k in ("epoch", "mAP", "Rank-1", "Rank-5", "mINP", "cluster_F") if k in self.history[-1]]
        rows = [[h.get(k) for k in keys] for h in self.history]
        logger.info("Evaluation summary:\n%s", tabulate(rows, headers=keys, tablefmt="github", floatfmt=".2f"))

    def state_dict(self) -> dict:
        return {"history": json.dumps(self.history)}

    def load_state_dict(self, state: dict) -> None:
        self.history = json.loads(state.get("history", "[]"))


class PeriodicCheckpointer(HookBase):
    """Saves the full training state every ``period`` epochs and after the last epoch, and with
    ``iter_period`` > 0 also every ``iter_period`` iterations inside an epoch, between two steps, to
    ``model_mid_epoch.pth`` (one file, replaced each time), from which a resume continues mid-epoch."""

    def __init__(self, period: int, iter_period: int = 0) -> None:
        self.period, self.iter_period = period, iter_period
        self._resumed_at = -1

    def before_train(self) -> None:
        self._resumed_at = self.trainer.iter  # that state is already on disk

    def before_step(self) -> None:
        t = self.trainer
        if self.iter_period > 0 and t.iter % self.iter_period == 0 and t.iter != self._resumed_at:
            t.save_checkpoint("model_mid_epoch", mid_epoch=True)

    def after_epoch(self) -> None:
        done = self.trainer.epoch + 1
        if done == self.trainer.max_epochs:
            self.trainer.save_checkpoint("model_final")
        elif self.period > 0 and done % self.period == 0:
            self.trainer.save_checkpoint(f"model_{done:04d}")


class PeriodicWriter(HookBase):
    """Console progress with ETA, JSON lines (``metrics.json``) and TensorBoard scalars."""

    def __init__(self, output_dir: str, period: int, tensorboard: bool) -> None:
        self.output_dir, self.period = output_dir, period
        self.json_path = os.path.join(output_dir, "metrics.json")
        self._tb = None
        if tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter
            except ImportError as e:
                logger.warning("TensorBoard logging disabled (%s); pip install tensorboard", e)
            else:
                self._tb = SummaryWriter(log_dir=os.path.join(output_dir, "tensorboard"))
        self._written: Dict[str, int] = {}
        self._start_time = 0.0
        self._start_iter = 0

    def before_train(self) -> None:
        self._start_time, self._start_iter = time.perf_counter(), self.trainer.iter

    def after_step(self) -> None:
        t = self.trainer
        if (t.inner_iter + 1) % self.period == 0 or t.inner_iter + 1 == t.iters_per_epoch:
            self._console()
            self._write()

    def after_epoch(self) -> None:
        self._write()

    def after_train(self) -> None:
        self._write()
        if self._tb is not None:
            self._tb.close()

    def _console(self) -> None:
        t, s = self.trainer, self.trainer.storage
        done = t.iter + 1 - self._start_iter
        per_iter = (time.perf_counter() - self._start_time) / max(done, 1)
        remaining = (t.max_epochs - t.epoch) * t.iters_per_epoch - (t.inner_iter + 1)
        eta = datetime.timedelta(seconds=int(per_iter * max(remaining, 0)))
        losses = "  ".join(f"{k} {s.window_mean(k, self.period):.4f}" for k in s.latest()
                           if "/" not in k and k != "lr")  # per-step scalars: the loss terms
        logger.info("epoch %d/%d  iter %d/%d  %s  lr %.2e  %.3fs/it  eta %s", t.epoch + 1, t.max_epochs,
                    t.inner_iter + 1, t.iters_per_epoch, losses, s.latest().get("lr", (0.0,))[0], per_iter, eta)

    def _write(self) -> None:
        s = self.trainer.storage
        fresh = {k: (v, it) for k, (v, it) in s.latest().items() if self._written.get(k, -1) < it}
        if not fresh:
            return
        record = {"epoch": self.trainer.epoch + 1, "iteration": s.iter}
        record.update({k: v for k, (v, _) in fresh.items()})
        with open(self.json_path, "a") as f:
            f.write(json.dumps(record) + "\n")
        if self._tb is not None:
            for k, (v, it) in fresh.items():
                self._tb.add_scalar(k, v, it)
        self._written.update({k: it for k, (_, it) in fresh.items()})
