"""Synthetic twins of the real layouts, generated under ``DATASETS.ROOT/synthetic`` on first use."""
import logging
import os

from .bases import DATASET_REGISTRY
from .market1501 import Market1501

logger = logging.getLogger(__name__)


def synthetic_root(cfg, root: str) -> str:
    s = cfg.DATASETS.SYNTHETIC
    return os.path.join(root, "synthetic", f"{s.PRESET}-seed{s.SEED}")


def ensure_synthetic(cfg, root: str, fmt: str, dataset_dir: str) -> str:
    """Return the folder holding the synthetic ``fmt`` dataset, generating it if allowed."""
    from ..synthetic import make_synthetic  # the generator is only needed for synthetic datasets

    s = cfg.DATASETS.SYNTHETIC
    base = synthetic_root(cfg, root)
    if not os.path.isdir(os.path.join(base, dataset_dir)):
        if not s.AUTO_GENERATE:
            raise FileNotFoundError(
                f"Synthetic dataset {os.path.join(base, dataset_dir)} is missing and "
                f"DATASETS.SYNTHETIC.AUTO_GENERATE is False. Generate it with: python "
                f"tools/make_synthetic.py --format {fmt} --root {base} --seed {s.SEED} --preset {s.PRESET}"
            )
        logger.info("Generating the synthetic %s world (preset %s, seed %d) in %s ...",
                    fmt, s.PRESET, s.SEED, base)
    make_synthetic(root=base, fmt=fmt, seed=s.SEED, preset=s.PRESET)
    return base


@DATASET_REGISTRY.register()
class SyntheticMarket1501(Market1501):
    """The Market-1501 reader on the synthetic person world."""

    def __init__(self, root: str, cfg) -> None:
        super().__init__(ensure_synthetic(cfg, root, "market1501", self.dataset_dir), cfg)
