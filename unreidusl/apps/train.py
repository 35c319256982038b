"""Train or evaluate an unsupervised re-ID model (``unreidusl-train``, ``tools/main.py``).

    unreidusl-train --config-file configs/Synthetic/cluster_contrast.yml [--resume] [KEY VALUE ...]
    unreidusl-train --config-file F TEST.EVAL_ONLY True MODEL.WEIGHTS output/x/model_final.pth
    unreidusl-train --num-gpus 4 --config-file F              # 4 processes on this machine
    torchrun --nproc-per-node 4 tools/main.py --config-file F # the same, started by torchrun
"""
import logging
import os
import sys

from ..config import ConfigError
from ..config.validate import validate_world_size
from ..data import CorruptImageError, DatasetFormatError
from ..engine import DefaultTrainer, PseudoLabelError, default_argument_parser, default_setup, setup_cfg
from ..engine.interrupt import TrainingInterrupted
from ..engine.launch import launch
from ..engine.run_dir import OutputDirError
from ..evaluation import format_metrics
from ..utils.checkpoint import CheckpointError
from ..utils.safe_npz import InvalidFileError, UnsafeFileError

try:  # the auxiliary-information package (older layout: cluster/aux_info.py)
    from ..auxinfo import AuxMismatchError
except ImportError:  # pragma: no cover - depends on the layout
    from ..cluster.aux_info import AuxMismatchError

__all__ = ["main", "worker_main", "run", "USER_ERRORS"]

logger = logging.getLogger("unreidusl")


# Errors caused by the user's data, files or settings: their messages name the culprit and the fix,
# so they are reported in one line (and in log.txt) instead of a traceback.
USER_ERRORS = (ConfigError, FileNotFoundError, DatasetFormatError, CorruptImageError, CheckpointError,
               PseudoLabelError, AuxMismatchError, InvalidFileError, UnsafeFileError, FloatingPointError)


def run(cfg, args) -> int:
    trainer = DefaultTrainer(cfg)
    trainer.resume_or_load(resume=args.resume)
    if cfg.TEST.EVAL_ONLY:
        if not cfg.MODEL.WEIGHTS and not args.resume:
            logger.warning("TEST.EVAL_ONLY without MODEL.WEIGHTS: evaluating a randomly initialised model")
        logger.info("%s", format_metrics(trainer.test(), "Evaluation:"))
        return 0
    trainer.train()
    return 0


def main(argv=None) -> int:
    args = default_argument_parser().parse_args(argv)
    try:  # fail before spawning workers
        cfg = setup_cfg(args.config_file, args.opts, eval_only=args.eval_only)
        validate_world_size(cfg, int(os.environ.get("WORLD_SIZE", args.num_gpus * args.num_machines)))
    except (ConfigError, ImportError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return launch(worker_main, args.num_gpus, args.num_machines, args.machine_rank, args.dist_url,
                  args=(args,))


def worker_main(args) -> int:
    """One process of the job (the only one without --num-gpus/torchrun)."""
    cfg = setup_cfg(args.config_file, args.opts, eval_only=args.eval_only)
    try:
        default_setup(cfg, resume=args.resume, overwrite=args.overwrite)
    except OutputDirError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    try:
        return run(cfg, args)
    except TrainingInterrupted as e:
        logger.warning("%s", e)
        return 128 + e.signum
    except USER_ERRORS as e:
        logger.error("%s: %s", type(e).__name__, e)
        return 1


if __name__ == "__main__":
    sys.exit(main())
