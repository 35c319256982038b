"""The one data model for image and video re-ID: a sample is a tracklet of one or more frames.

An image dataset is a video dataset whose tracklets have one frame, so samplers, clustering and
evaluation never fork on image vs video.  Readers subclass :class:`ReIDDataset`, fill ``train``,
``query`` and ``gallery`` and describe their folder tree in ``expected_tree`` (printed when the
folder is missing).
"""
import logging
import os
from typing import Dict, List, NamedTuple, Optional, Sequence, Tuple

from tabulate import tabulate

from ...utils.registry import Registry

logger = logging.getLogger(__name__)

DATASET_REGISTRY = Registry("DATASET")
DATASET_REGISTRY.__doc__ = """Datasets: called as ``obj(root, cfg)``; return a ``ReIDDataset`` with lists
``train``, ``query`` and ``gallery`` of ``Sample``."""


class Sample(NamedTuple):
    """frames: image paths in temporal order (one for image datasets); pid: identity (−1 unknown,
    0 may be a distractor in test splits); camid: 0-based camera; timestamps: one per frame in
    world frames of the dataset's clock, or ``()`` when the layout carries no time (MARS,
    original MSMT17)."""

    frames: Tuple[str, ...]
    pid: int
    camid: int
    timestamps: Tuple[float, ...] = ()


class DatasetFormatError(ValueError):
    """A file in a dataset folder breaks the layout's naming rule."""


def format_error(path: str, rule: str, example: str = "", fix: str = "Rename or remove the file.") -> \
        DatasetFormatError:
    """The error for a file ``path`` that breaks ``rule`` (the message names both)."""
    eg = f" (e.g. {example})" if example else ""
    return DatasetFormatError(f"{path}: does not follow the rule {rule}{eg}. {fix}")


def dense_split(samples: Sequence[Sample], step: int) -> List[Sample]:
    """Cut every tracklet of n frames into ``m = n // step`` chunks (DATASETS.MODE "dense"):
    chunk i < m−1 holds frames [i·step, (i+1)·step), the last chunk runs from (m−1)·step to the
    end (so its length is in [step, 2·step − 1]); a tracklet shorter than ``step`` is kept whole.
    Chunks inherit pid and camid and keep their frames' timestamps."""
    if step < 1:
        raise ValueError(f"DATASETS.DENSE_STEP must be >= 1, got {step}")
    out: List[Sample] = []
    for s in samples:
        n = len(s.frames)
        m = n // step
        if m <= 1:
            out.append(s)
            continue
        bounds = [i * step for i in range(m)] + [n]
        ts = s.timestamps
        for a, b in zip(bounds[:-1], bounds[1:]):
            out.append(Sample(s.frames[a:b], s.pid, s.camid, ts[a:b] if ts else ()))
    return out


class ReIDDataset:
    """Base class: subclasses fill ``train``/``query``/``gallery`` and describe their folder tree.

    ``distractor_pid``: the pid that marks gallery distractors in this layout (Market-1501 and
    MARS: 0), or None; it is only used for the statistics table."""

    dataset_dir = ""
    expected_tree = ""
    distractor_pid: Optional[int] = None

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
        return bool(self.train) and all(s.pid >= 0 for s in self.train)

    @property
    def is_video(self) -> bool:
        """True when some sample has more than one frame."""
        return any(len(s.frames) > 1 for s in self.train + self.query + self.gallery)

    def check_before_run(self, required: Sequence[str]) -> None:
        """Raise ``FileNotFoundError`` naming the missing paths and printing ``expected_tree``."""
        missing = [p for p in required if not os.path.exists(p)]
        if missing:
            raise FileNotFoundError(
                f"{self.name}: missing {', '.join(missing)}.\nExpected this tree under "
                f"{os.path.dirname(os.path.normpath(missing[0])) or '.'}:\n{self.expected_tree}\n"
                f"Set DATASETS.ROOT to the folder that contains '{self.dataset_dir}'."
            )

    @staticmethod
    def relabel(samples: List[Sample]) -> List[Sample]:
        """Map the pids to 0..P−1 in sorted order (deterministic)."""
        mapping = {pid: i for i, pid in enumerate(sorted({s.pid for s in samples}))}
        return [s._replace(pid=mapping[s.pid]) for s in samples]

    def apply_mode(self) -> None:
        """Apply ``DATASETS.MODE`` to the training split ("dense": chunks of DENSE_STEP frames)."""
        mode = str(self.cfg.DATASETS.MODE).lower() if self.cfg is not None else "all"
        if mode == "dense":
            before = len(self.train)
            self.train = dense_split(self.train, int(self.cfg.DATASETS.DENSE_STEP))
            logger.info("%s: dense mode cut %d training tracklets into %d chunks of %d+ frames",
                        self.name, before, len(self.train), self.cfg.DATASETS.DENSE_STEP)
        elif mode != "all":
            raise ValueError(f"DATASETS.MODE must be 'all' or 'dense', got {self.cfg.DATASETS.MODE!r}")

    def require(self, splits: Sequence[str]) -> None:
        """Raise ``DatasetFormatError`` naming the dataset folder when one of ``splits`` is empty."""
        empty = [s for s in splits if not getattr(self, s)]
        if empty:
            raise DatasetFormatError(
                f"{self.name} under {self.root}: the {' and '.join(empty)} split{'s are' if len(empty) > 1 else ' is'} "
                f"empty (no readable sample). Expected this tree:\n{self.expected_tree}\nPut the images "
                f"there, or point DATASETS.ROOT at the folder that holds '{self.dataset_dir}'.")

    def statistics(self) -> List[List]:
        """Rows [split, ids, samples, cameras, frames, distractor samples]."""
        rows = []
        for split, samples in (("train", self.train), ("query", self.query), ("gallery", self.gallery)):
            pids = {s.pid for s in samples}
            n_dis = 0
            if self.distractor_pid is not None and split != "train":
                n_dis = sum(1 for s in samples if s.pid == self.distractor_pid)
                pids.discard(self.distractor_pid)
            rows.append([split, len(pids), len(samples), len({s.camid for s in samples}),
                         sum(len(s.frames) for s in samples), n_dis])
        return rows

    def summary_table(self) -> str:
        return tabulate(self.statistics(), headers=["split", "ids", "samples", "cameras", "frames",
                                                    "distractors"], tablefmt="github")

    def show_summary(self) -> None:
        logger.info("Loaded %s from %s:\n%s", self.name, self.root, self.summary_table())

    def split_counts(self) -> Dict[str, int]:
        return {"train": len(self.train), "query": len(self.query), "gallery": len(self.gallery)}
