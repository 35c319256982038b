"""Command-line parsing, job setup and the DefaultTrainer that builds everything from ``cfg``."""
import argparse
import logging
import os
from typing import Dict, List, Optional

import numpy as np
import torch

from ..auxinfo.test_time import build_test_aux, test_transit_available
from ..config import CfgNode, ConfigError, get_cfg, load_yaml_with_base
from ..config.validate import validate_cfg
from ..data import build_dataset
from ..evaluation import ReidEvaluator
from ..modeling import build_model
from ..solver import build_lr_scheduler, build_optimizer
from ..utils import comm
from ..utils.checkpoint import Checkpointer, CheckpointError, load_checkpoint, rng_state, set_rng_state
from ..utils.env import epoch_seed, import_plugins, seed_all, set_deterministic
from ..utils.logger import setup_logger
from . import hooks, selection, teacher_hooks
from .interrupt import StopOnSignal
from .nonfinite import NonFiniteLossGuard
from .amp import build_mixed_precision
from .launch import create_ddp_model
from .run_dir import OutputDirError, claim_output_dir
from .train_loop import HOOK_REGISTRY, SimpleTrainer

logger = logging.getLogger(__name__)

__all__ = ["default_argument_parser", "setup_cfg", "default_setup", "DefaultTrainer"]


def default_argument_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description="unreidusl: unsupervised re-ID training and evaluation",
        epilog="Example: python tools/main.py --config-file configs/Synthetic/cluster_contrast.yml "
               "SOLVER.MAX_EPOCHS 5 OUTPUT_DIR output/try",
    )
    parser.add_argument("--config-file", default="", metavar="FILE", help="YAML config (may use _BASE_)")
    parser.add_argument("--resume", action="store_true",
                        help="continue from the last checkpoint in OUTPUT_DIR (if there is one)")
    parser.add_argument("--overwrite", action="store_true",
                        help="delete an earlier run's files in OUTPUT_DIR (checkpoints, logs, metrics) "
                             "and start afresh; without it such a folder is refused")
    parser.add_argument("--eval-only", action="store_true", help="only evaluate (same as TEST.EVAL_ONLY True)")
    # Distributed training (engine/launch.py); under torchrun these are ignored (its env vars rule).
    parser.add_argument("--num-gpus", type=int, default=1,
                        help="processes per machine: one per GPU (gloo CPU processes without CUDA)")
    parser.add_argument("--num-machines", type=int, default=1, help="number of machines")
    parser.add_argument("--machine-rank", type=int, default=0, help="rank of this machine (0 = master)")
    parser.add_argument("--dist-url", default="auto",
                        help="process-group URL, tcp://MASTER_IP:PORT for several machines "
                             "(auto: a free local port)")
    parser.add_argument("opts", nargs=argparse.REMAINDER, default=[],
                        help="KEY VALUE pairs overriding the config, e.g. SOLVER.BASE_LR 0.001")
    return parser


def _plugins_from(data: dict, opts: List[str], config_file: str) -> List[str]:
    plugins = list(data.get("PLUGINS", []) or [])
    for key, value in zip(opts[0::2], opts[1::2]):
        if key == "PLUGINS":
            plugins = list(CfgNode._decode_cfg_value(value))
    base = os.path.dirname(os.path.abspath(config_file)) if config_file else ""
    resolved = []
    for p in plugins:
        candidate = os.path.join(base, p)
        if p.endswith(".py") and not os.path.isabs(p) and not os.path.exists(p) and os.path.exists(candidate):
            p = candidate
        resolved.append(p)
    return resolved


def setup_cfg(config_file: str = "", opts: Optional[List[str]] = None, eval_only: bool = False) -> CfgNode:
    """defaults ← plugins' ``add_config`` ← YAML (with _BASE_) ← ``KEY VALUE`` overrides; frozen.

    PLUGINS are imported first so that they can register components and add config keys."""
    opts = list(opts or [])
    cfg = get_cfg()
    data = load_yaml_with_base(config_file) if config_file else {}
    plugins = _plugins_from(data, opts, config_file)
    for module in import_plugins(plugins):
        if hasattr(module, "add_config"):
            module.add_config(cfg)
    cfg.merge_from_dict(data, source=config_file or "dict")
    cfg.merge_from_list(opts)
    cfg.PLUGINS = plugins
    if eval_only:
        cfg.TEST.EVAL_ONLY = True
    validate_cfg(cfg)
    cfg.freeze()
    return cfg


def default_setup(cfg: CfgNode, resume: bool = False, overwrite: bool = False) -> None:
    """Claim OUTPUT_DIR (``run_dir.claim_output_dir``: a lock, and no silent overwrite of an earlier
    run unless ``resume`` or ``overwrite``), log to it, save the merged config, seed and set
    determinism.  In a distributed job only rank 0 claims and writes the log, config, metrics and
    checkpoints; rank r > 0 writes its warnings to ``OUTPUT_DIR/log.rank<r>.txt`` and prints only
    errors."""
    main = comm.is_main_process()
    error = None
    if main:
        try:
            config_path, notes = claim_output_dir(cfg.OUTPUT_DIR, cfg.dump(), resume=resume,
                                                  overwrite=overwrite, eval_only=cfg.TEST.EVAL_ONLY)
        except OutputDirError as e:
            error = e
    failure = comm.broadcast_object(str(error) if error else None)  # all ranks stop together
    if error is not None:
        raise error
    if failure is not None:
        raise OutputDirError(failure)
    if main:
        setup_logger(cfg.OUTPUT_DIR)
        for note in notes:
            logger.warning("%s", note)
    else:  # the other ranks' warnings go to their own file; only errors reach the console
        setup_logger(cfg.OUTPUT_DIR, level=logging.WARNING, console_level=logging.ERROR,
                     filename=f"log.rank{comm.get_rank()}.txt")
    logger.info("torch %s on %s, process %d of %d; output in %s", torch.__version__,
                "CUDA" if torch.cuda.is_available() else "CPU", comm.get_rank() + 1, comm.get_world_size(),
                os.path.abspath(cfg.OUTPUT_DIR))
    if main:
        with open(config_path, "w") as f:
            f.write(cfg.dump())
        logger.info("Full config saved to %s", config_path)
    seed_all(cfg.SEED)
    set_deterministic(cfg.DETERMINISTIC)


class DefaultTrainer(SimpleTrainer):
    """Builds the model, optimiser, scheduler, datasets and hooks from ``cfg`` and orchestrates them."""

    def __init__(self, cfg: CfgNode) -> None:
        model = build_model(cfg)
        super().__init__(model, build_optimizer(cfg, model))
        self.cfg = cfg
        self.scheduler = build_lr_scheduler(cfg, self.optimizer)
        with comm.main_process_first():  # rank 0 generates / caches the datasets, the others wait
            self.train_set = build_dataset(cfg, cfg.DATASETS.TRAIN)
            self.test_set = (self.train_set if cfg.DATASETS.TEST == cfg.DATASETS.TRAIN
                             else build_dataset(cfg, cfg.DATASETS.TEST))
        if not cfg.TEST.EVAL_ONLY:
            self.train_set.require(["train"])
        self.test_set.require(["query", "gallery"])
        self.checkpointer = Checkpointer(cfg.OUTPUT_DIR)
        self.iters_per_epoch = cfg.SOLVER.ITERS_PER_EPOCH
        self.forward_batch_size = cfg.SOLVER.FORWARD_BATCH_SIZE
        if self.forward_batch_size and not model.supports_chunked_forward:
            raise ConfigError(f"SOLVER.FORWARD_BATCH_SIZE {self.forward_batch_size}: {type(model).__name__} "
                              f"has no per_sample / batch_losses split (docs/meta_arch.md), so its "
                              f"forward cannot run in chunks; set SOLVER.FORWARD_BATCH_SIZE 0")
        skips = cfg.SOLVER.MAX_NONFINITE_SKIPS if cfg.SOLVER.SKIP_NONFINITE_LOSS else 0
        self.nonfinite = NonFiniteLossGuard(skips, lambda: self.checkpointer.run_checkpoint)
        self.amp = build_mixed_precision(cfg, next(model.parameters()).device)
        self.max_epochs = cfg.SOLVER.MAX_EPOCHS
        self._evaluators: Dict[bool, ReidEvaluator] = {}  # keyed by whether STS is applied
        self.register_hooks(self.build_hooks())

    def build_hooks(self) -> List[hooks.HookBase]:
        cfg = self.cfg
        truth = (np.array([s.pid for s in self.train_set.train]) if self.train_set.has_train_labels else None)
        pseudo_labels = self.pseudo_labels = hooks.PseudoLabelHook(cfg, self.train_set.train, truth)
        default = [
            pseudo_labels,
            hooks.LRScheduler(self.scheduler),
            hooks.EvalHook(cfg.TEST.EVAL_PERIOD, self.test, cfg.TEST.EVAL_AT_START),
            hooks.PeriodicCheckpointer(cfg.SOLVER.CHECKPOINT_PERIOD, cfg.SOLVER.CHECKPOINT_ITER_PERIOD),
            # rank 0 writes the logs (register_hooks skips None)
            hooks.PeriodicWriter(cfg.OUTPUT_DIR, cfg.LOG.PERIOD, cfg.LOG.TENSORBOARD)
            if comm.is_main_process() else None,
        ]
        if cfg.SOLVER.RESET_OPTIMIZER_EACH_EPOCH:
            default.insert(1, selection.ResetOptimizerEachEpoch())
        if cfg.SOLVER.SELECT_BEST != "last":
            default.insert(-1, selection.BestCheckpointer(
                cfg.SOLVER.SELECT_BEST, os.path.join(cfg.OUTPUT_DIR, "model_best.pth"),
                lambda: pseudo_labels.labels))
        if cfg.DATALOADER.ITERS_CLUSTER_MULTIPLIER > 0:
            default.insert(1, teacher_hooks.DynamicIterations(cfg.DATALOADER.ITERS_CLUSTER_MULTIPLIER))
        # hooks switched on by the capabilities the method declares (ReIDMethod)
        if self.model.relabelled_parameters():
            default.insert(1, teacher_hooks.RelabelledOptimizerState(pseudo_labels))
        if self.model.has_teacher:
            default.insert(1, teacher_hooks.EMATeacher(cfg.MEAN_TEACHER.EMA_STEP))
        if self.model.tracks_progress:
            default.insert(1, teacher_hooks.TrainingProgress())
        if cfg.SOLVER.CHECKPOINT_ON_SIGNAL:
            default.append(StopOnSignal())  # after the scheduler and checkpointer: it may save and stop
        default.append(HOOK_REGISTRY.get("CurvesHook")(cfg, self))  # OUTPUT_DIR/curves.png (rank 0 draws)
        if cfg.CLUSTER.REPORT:
            default.append(HOOK_REGISTRY.get("ClusterReportHook")(cfg, self))  # OUTPUT_DIR/clusters/ report
        return default + [HOOK_REGISTRY.get(name)(cfg, self) for name in cfg.HOOKS]

    def before_epoch(self) -> None:
        seed_all(epoch_seed(self.cfg.SEED, self.epoch))
        super().before_epoch()
        self.train_module = self.model  # re-wrapped at the next step: new pseudo-labels may resize parameters

    def run_step(self) -> None:
        if comm.is_distributed() and self.train_module is self.model:
            self.train_module = create_ddp_model(self.model)
        super().run_step()

    def after_epoch(self) -> None:
        # DDP syncs buffers before each forward, so each rank's last step left its own BN statistics:
        # rank 0's go to all ranks before evaluation, checkpointing and the next clustering.
        comm.broadcast_buffers_(self.model)
        super().after_epoch()

    def test(self) -> Dict[str, float]:
        """Evaluate on query/gallery, with the TEST.* auxiliary terms (TOC/SCP/STS) when switched on;
        they are rebuilt each time because the STS transit model follows the current clustering."""
        cfg = self.cfg
        transit = self.pseudo_labels.labeler.transit
        if cfg.TEST.STS.ENABLED and not test_transit_available(cfg, transit):
            logger.warning("TEST.STS.ENABLED: no spatio-temporal model yet (it is estimated at the first "
                           "clustering, or comes from AUX.PATH); evaluating without STS")
            cfg = cfg.clone()
            cfg.defrost()
            cfg.TEST.STS.ENABLED = False
            cfg.freeze()
        aux = build_test_aux(cfg, self.test_set.query, self.test_set.gallery, transit)
        evaluator = self._evaluators.get(cfg.TEST.STS.ENABLED)
        if evaluator is None:
            evaluator = ReidEvaluator(cfg, self.test_set.query, self.test_set.gallery, **aux)
            self._evaluators[cfg.TEST.STS.ENABLED] = evaluator
        elif aux:
            evaluator.set_aux(**aux)
        return evaluator.evaluate(self.model)

    def train(self) -> None:
        super().train(self.start_epoch, self.max_epochs)

    # ---------------------------------------------------------------- checkpoints
    def state_dict(self, mid_epoch: bool = False) -> dict:
        """The full training state.  ``mid_epoch``: taken between two steps of the current epoch (after
        its ``before_epoch``), so that a resume continues at step ``inner_iter`` of ``epoch``;
        otherwise the resume starts the next epoch."""
        position = {"epoch": self.epoch + 1}
        if mid_epoch:
            position = {"epoch": self.epoch, "inner_iter": self.inner_iter,
                        "iters_per_epoch": self.iters_per_epoch}
        return {
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            **position,
            "iter": self.iter,
            "nonfinite_skips": self.nonfinite.consecutive,
            "rng": rng_state(),
            "amp": self.amp.state_dict(),
            "hooks": self._hook_states(),
            "config": self.cfg.dump(),
        }

    def _hook_states(self) -> dict:
        """Each hook's state under its class name (a hook class registered twice, e.g. also named
        in HOOKS, keeps the state of its first instance, the one that acts)."""
        states: dict = {}
        for h in self.hooks:
            states.setdefault(type(h).__name__, h.state_dict())
        return states

    def save_checkpoint(self, name: str, mid_epoch: bool = False) -> str:
        """Rank 0 writes the checkpoint; the other ranks wait until it is complete, and stop with
        :class:`CheckpointError` too when rank 0 could not write it (instead of waiting forever)."""
        path = os.path.join(self.checkpointer.save_dir, f"{name}.pth")
        error = None
        if comm.is_main_process():
            try:
                path = self.checkpointer.save(name, self.state_dict(mid_epoch))
            except Exception as e:  # re-raised below, after the other ranks heard of it
                error = e
        failure = comm.broadcast_object(f"{type(error).__name__}: {error}" if error else None)
        if error is not None:
            raise error
        if failure is not None:
            raise CheckpointError(f"rank 0 could not write {path}: {failure}")
        return path

    def load_model_weights(self, path: str) -> None:
        state = load_checkpoint(path)
        state = state.get("model", state)
        try:
            self.model.load_state_dict(state)
        except RuntimeError as e:
            raise CheckpointError(f"MODEL.WEIGHTS={path} does not fit {type(self.model).__name__} "
                                  f"(check MODEL.BACKBONE.DEPTH and MODEL.META_ARCHITECTURE): {e}") from e
        logger.info("Loaded model weights from %s", path)

    def resume_or_load(self, resume: bool) -> None:
        """With ``resume``: restore the full state from OUTPUT_DIR's last checkpoint if one exists.
        Otherwise (or if none exists) load MODEL.WEIGHTS when given."""
        path = self.checkpointer.last_checkpoint() if resume else None
        if path is None:
            if resume:
                logger.info("No checkpoint in %s: starting from scratch", self.cfg.OUTPUT_DIR)
            if self.cfg.MODEL.WEIGHTS:
                self.load_model_weights(self.cfg.MODEL.WEIGHTS)
            return
        state = load_checkpoint(path)
        missing = [k for k in ("model", "optimizer", "scheduler", "epoch", "iter", "hooks", "rng")
                   if k not in state]
        if missing:
            raise CheckpointError(f"{path} is not a training checkpoint of unreidusl (no {', '.join(missing)}): "
                                  f"use it as MODEL.WEIGHTS without --resume, or resume from another "
                                  f"OUTPUT_DIR")
        try:
            self.model.load_state_dict(state["model"])
            self.optimizer.load_state_dict(state["optimizer"])
        except (RuntimeError, ValueError, KeyError) as e:
            raise CheckpointError(
                f"--resume: {path} was written by another model or optimiser than this config builds "
                f"({type(self.model).__name__}; {str(e).splitlines()[0][:300]}). Resume with the config "
                f"of that run (OUTPUT_DIR/config.yaml), or start this one in another OUTPUT_DIR") from None
        self.scheduler.load_state_dict(state["scheduler"])
        self.checkpointer.run_checkpoint = path
        self.start_epoch, self.iter = int(state["epoch"]), int(state["iter"])
        self.nonfinite.consecutive = int(state.get("nonfinite_skips", 0))
        if "inner_iter" in state:  # a mid-epoch checkpoint: continue inside that epoch
            self.start_inner_iter = int(state["inner_iter"])
            self.iters_per_epoch = int(state["iters_per_epoch"])
            logger.info("%s is a mid-epoch checkpoint: %d of the epoch's %d steps are done", path,
                        self.start_inner_iter, self.iters_per_epoch)
        for h in self.hooks:
            h.load_state_dict(state["hooks"].get(type(h).__name__, {}))
        set_rng_state(state["rng"])
        self.amp.load_state_dict(state.get("amp", {}))
        logger.info("Resumed from %s at epoch %d (iteration %d)", path, self.start_epoch, self.iter)
