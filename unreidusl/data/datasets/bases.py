"""The one data model for image and video re-ID: a sample is a tracklet of one or more frames."""
import logging
import os
from typing import List, NamedTuple, Sequence, Tuple

from tabulate import tabulate

from ...utils.registry import Registry

logger = logging.getLogger(__name__)

DATASET_REGISTRY = Registry("DATASET")
DATASET_REGISTRY.__doc__ = """Datasets: called as ``obj(root, cfg)``; return a ``ReIDDataset`` with lists
``train``, ``query`` and ``gallery`` of ``Sample``."""


class Sample(NamedTuple):
    """frames: image paths in temporal order (one for image datasets); pid: identity (−1 unknown,
    0 may be a distractor in test splits); camid: 0-based camera; timestamps: one per frame."""

    frames: Tuple[str, ...]
    pid: int
    camid: int
    timestamps: Tuple[float, ...] = ()


class DatasetFormatError(ValueError):
    """A file in a dataset folder breaks the layout's naming rule."""


class ReIDDataset:
    """Base class: subclasses fill ``train``/``query``/``gallery`` and describe their folder tree."""

    dataset_dir = ""
    expected_tree = ""

    def __init__(self, root: str, cfg=None) -> None:
        self.root = root
        self.cfg = cfg
        self.train: List[Sample] = []
        self.query: List[Sample] = []
        self.gallery: List[Sample] = []

    @property
    def name(self) -> str:
        return type(self).__name__

    @property
    def has_train_labels(self) -> bool:
        """True when the training identities are known (used only for cluster diagnostics)."""
        return all(s.pid >= 0 for s in self.train)

    def check_before_run(self, required: Sequence[str]) -> None:
        missing = [p for p in required if not os.path.exists(p)]
        if missing:
            raise FileNotFoundError(
                f"{self.name}: missing {', '.join(missing)}.\nExpected this tree under "
                f"{os.path.dirname(missing[0]) or '.'}:\n{self.expected_tree}\n"
                f"Set DATASETS.ROOT to the folder that contains '{self.dataset_dir}'."
            )

    @staticmethod
    def relabel(samples: List[Sample]) -> List[Sample]:
        """Map the pids to 0..P−1 in sorted order (deterministic)."""
        mapping = {pid: i for i, pid in enumerate(sorted({s.pid for s in samples}))}
        return [s._replace(pid=mapping[s.pid]) for s in samples]

    def statistics(self) -> List[List]:
        rows = []
        for split, samples in (("train", self.train), ("query", self.query), ("gallery", self.gallery)):
            rows.append([
                split, len({s.pid for s in samples}), len(samples),
                len({s.camid for s in samples}), sum(len(s.frames) for s in samples),
            ])
        return rows

    def show_summary(self) -> None:
        table = tabulate(self.statistics(), headers=["split", "ids", "samples", "cameras", "frames"],
                         tablefmt="github")
        logger.info("Loaded %s from %s:\n%s", self.name, self.root, table)
