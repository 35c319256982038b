#!/usr/bin/env python
"""Train or evaluate an unsupervised re-ID model.

    python tools/main.py --config-file configs/Synthetic/cluster_contrast.yml [--resume] [KEY VALUE ...]
    python tools/main.py --config-file F TEST.EVAL_ONLY True MODEL.WEIGHTS output/x/model_final.pth
"""
import logging
import sys

from unreidusl.cluster.aux_info import AuxMismatchError
from unreidusl.config import ConfigError
from unreidusl.data import CorruptImageError, DatasetFormatError
from unreidusl.engine import DefaultTrainer, PseudoLabelError, default_argument_parser, default_setup, setup_cfg
from unreidusl.evaluation import format_metrics
from unreidusl.utils.checkpoint import CheckpointError

logger = logging.getLogger("unreidusl")


# Errors caused by the user's data, files or settings: their messages name the culprit and the fix,
# so they are reported in one line (and in log.txt) instead of a traceback.
USER_ERRORS = (FileNotFoundError, DatasetFormatError, CorruptImageError, CheckpointError,
               PseudoLabelError, AuxMismatchError, FloatingPointError)


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
    try:
        cfg = setup_cfg(args.config_file, args.opts, eval_only=args.eval_only)
    except (ConfigError, ImportError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    default_setup(cfg)
    try:
        return run(cfg, args)
    except USER_ERRORS as e:
        logger.error("%s: %s", type(e).__name__, e)
        return 1


if __name__ == "__main__":
    sys.exit(main())
