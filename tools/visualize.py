#!/usr/bin/env python
"""Evaluate a trained model and draw rank lists (query + top-10 gallery, green = true match,
red = false match, junk excluded) and the CMC curve into OUTPUT_DIR/visualize/.

    python tools/visualize.py --config-file F MODEL.WEIGHTS w [--num-queries N] [KEY VALUE ...]
"""
import argparse
import logging
import os
import sys

from unreidusl.config import ConfigError
from unreidusl.engine import DefaultTrainer, default_setup, setup_cfg
from unreidusl.evaluation import format_metrics

logger = logging.getLogger("unreidusl")


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0],
        epilog="Any TEST.* option applies, e.g. TEST.RERANK.ENABLED True.")
    parser.add_argument("--config-file", default="", metavar="FILE", help="YAML config")
    parser.add_argument("--num-queries", type=int, default=None,
                        help="rank lists to draw (default TEST.VISUALIZE.NUM_QUERIES)")
    parser.add_argument("opts", nargs=argparse.REMAINDER, default=[],
                        help="KEY VALUE pairs overriding the config, e.g. MODEL.WEIGHTS w.pth")
    args = parser.parse_args(argv)
    opts = list(args.opts)
    for i, tok in enumerate(opts):             # --num-queries may also follow the KEY VALUE pairs
        if tok == "--num-queries" and i + 1 < len(opts):
            args.num_queries = int(opts[i + 1])
            del opts[i:i + 2]
            break
        if tok.startswith("--num-queries="):
            args.num_queries = int(tok.split("=", 1)[1])
            del opts[i]
            break
    args.opts = opts
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    opts = args.opts + ["TEST.VISUALIZE.ENABLED", "True"]
    if args.num_queries is not None:
        opts += ["TEST.VISUALIZE.NUM_QUERIES", str(args.num_queries)]
    try:
        cfg = setup_cfg(args.config_file, opts, eval_only=True)
    except (ConfigError, ImportError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    default_setup(cfg)
    if not cfg.MODEL.WEIGHTS:
        logger.warning("No MODEL.WEIGHTS given: drawing the rankings of an untrained model")
    trainer = DefaultTrainer(cfg)
    trainer.resume_or_load(resume=False)
    metrics = trainer.test()
    logger.info("%s", format_metrics(metrics, "Evaluation:"))
    logger.info("Pictures in %s", os.path.abspath(os.path.join(cfg.OUTPUT_DIR, "visualize")))
    return 0


if __name__ == "__main__":
    sys.exit(main())
