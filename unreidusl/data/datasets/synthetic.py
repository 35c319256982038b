"""Synthetic twins of the real layouts, generated under ``DATASETS.ROOT/synthetic`` on first use.

``Synthetic<Name>`` runs the ``<Name>`` reader on the folder written by the generator
(``unreidusl.data.synthetic``) with preset ``DATASETS.SYNTHETIC.PRESET`` and seed
``DATASETS.SYNTHETIC.SEED``, in ``DATASETS.ROOT/synthetic/<preset>-seed<seed>/``, a cache: a
folder made there by another version of the generator is regenerated.
"""
import logging
import os

from .bases import DATASET_REGISTRY, DatasetFormatError
from .dukemtmc_video import DukeMTMCVideoReID
from .dukemtmcreid import DukeMTMCreID
from .market1501 import Market1501
from .mars import MARS
from .msmt17 import MSMT17
from .veri import VeRi

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
    try:
        make_synthetic(root=base, fmt=fmt, seed=s.SEED, preset=s.PRESET, refresh_stale=True)
    except OSError as e:
        if isinstance(e, FileExistsError):
            raise DatasetFormatError(f"{e}") from None
        raise DatasetFormatError(
            f"Cannot generate the synthetic {fmt} dataset in {base} ({e.strerror or e}): make "
            f"DATASETS.ROOT ({root}) writable, or point it at a writable folder") from None
    return base


def _twin(reader, fmt: str, doc: str):
    def __init__(self, root: str, cfg) -> None:
        reader.__init__(self, ensure_synthetic(cfg, root, fmt, reader.dataset_dir), cfg)

    cls = type(f"Synthetic{reader.__name__}", (reader,), {"__init__": __init__, "__doc__": doc,
                                                         "__module__": __name__})
    return DATASET_REGISTRY.register(cls)


SyntheticMarket1501 = _twin(Market1501, "market1501", "The Market-1501 reader on the synthetic person world.")
SyntheticDukeMTMCreID = _twin(DukeMTMCreID, "dukemtmcreid",
                              "The DukeMTMC-reID reader on the synthetic person world.")
SyntheticMSMT17 = _twin(MSMT17, "msmt17", "The MSMT17 reader on the synthetic person world "
                        "(Market-style MSMT17_V1 layout with list files).")
SyntheticVeRi = _twin(VeRi, "veri", "The VeRi-776 reader on the synthetic vehicle world.")
SyntheticMARS = _twin(MARS, "mars", "The MARS reader on the synthetic person world (info/ files).")
SyntheticDukeMTMCVideoReID = _twin(DukeMTMCVideoReID, "dukemtmc-videoreid",
                                   "The DukeMTMC-VideoReID reader on the synthetic person world.")
