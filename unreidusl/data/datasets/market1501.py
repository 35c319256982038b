"""Image datasets read from ``bounding_box_*``-style folders, and Market-1501 itself.

:class:`ImageFolderDataset` lists a folder once (``os.scandir``, sorted names) and parses every
file name with one regular expression; it never opens an image at load time.
"""
import os
import re
from typing import Dict, List, Optional, Sequence

from .bases import DATASET_REGISTRY, DatasetFormatError, ReIDDataset, Sample, format_error


def list_images(folder: str, extensions: Sequence[str] = (".jpg",)) -> List[str]:
    """Sorted names of the image files directly in ``folder``."""
    exts = tuple(e.lower() for e in extensions)
    with os.scandir(folder) as it:
        return sorted(e.name for e in it if e.name.lower().endswith(exts))


class ImageFolderDataset(ReIDDataset):
    """One image per sample, identity and camera parsed from the file name.

    Subclasses set ``splits`` (split -> sub-folder), ``name_rule`` (regex with groups ``pid``,
    ``cam`` and optionally ``time``), ``rule_text`` / ``example`` for error messages, and
    ``num_cameras`` (camera ids 1..num_cameras in names, stored 0-based).  Samples with
    ``junk_pid`` are dropped in every split; train pids are relabelled 0..P-1.
    """

    splits: Dict[str, str] = {}
    name_rule: "re.Pattern" = re.compile("")
    rule_text = ""
    example = ""
    num_cameras = 0
    junk_pid: Optional[int] = -1
    extensions: Sequence[str] = (".jpg",)

    def __init__(self, root: str, cfg=None) -> None:
        super().__init__(root, cfg)
        self.dataset_path = os.path.join(root, self.dataset_dir)
        folders = {k: os.path.join(self.dataset_path, v) for k, v in self.splits.items()}
        self.check_before_run([self.dataset_path] + list(folders.values()))
        self.load(folders)
        if not self.train:
            raise DatasetFormatError(f"{folders['train']} contains no image ({'/'.join(self.extensions)})")

    def load(self, folders: Dict[str, str]) -> None:
        self.train = self.relabel(self.read_folder(folders["train"]))
        self.query = self.read_folder(folders["query"])
        self.gallery = self.read_folder(folders["gallery"])

    def parse_name(self, folder: str, fname: str):
        """(pid, camid 0-based, timestamps) of one file name; raise naming the file and the rule."""
        m = self.name_rule.match(fname)
        if m is None:
            raise format_error(os.path.join(folder, fname), f"{self.rule_text} of {self.name}",
                               self.example)
        pid, cam = int(m.group("pid")), int(m.group("cam"))
        if not 1 <= cam <= self.num_cameras:
            raise format_error(os.path.join(folder, fname),
                               f"camera id in 1..{self.num_cameras} of {self.name} (got {cam})",
                               self.example)
        t = m.groupdict().get("time")
        return pid, cam - 1, ((float(t),) if t is not None else ())

    def read_folder(self, folder: str, names: Optional[Sequence[str]] = None) -> List[Sample]:
        samples = []
        for fname in (list_images(folder, self.extensions) if names is None else names):
            pid, camid, ts = self.parse_name(folder, fname)
            if pid == self.junk_pid:
                continue
            samples.append(Sample((os.path.join(folder, fname),), pid, camid, ts))
        return samples


@DATASET_REGISTRY.register()
class Market1501(ImageFolderDataset):
    """Market-1501: ``PPPP_cCsS_FFFFFF_BB.jpg``.

    Junk boxes (pid −1) are dropped everywhere; distractors (pid 0) stay in the gallery.
    Cameras become 0-based; the timestamp of an image is its frame number ``FFFFFF`` (the frame
    inside sequence ``sS``; the synthetic twin uses one sequence, so it is its world frame)."""

    dataset_dir = "Market-1501-v15.09.15"
    num_cameras = 6
    distractor_pid = 0
    expected_tree = (
        "Market-1501-v15.09.15/\n"
        "  bounding_box_train/   0002_c1s1_000451_03.jpg ...\n"
        "  bounding_box_test/    0000_c1s1_000151_01.jpg ... (-1_* junk, 0000_* distractors)\n"
        "  query/                0001_c1s1_001051_00.jpg ..."
    )
    splits = {"train": "bounding_box_train", "query": "query", "gallery": "bounding_box_test"}
    name_rule = re.compile(r"^(?P<pid>-?\d+)_c(?P<cam>\d)s(?P<seq>\d+)_(?P<time>\d+)_(?P<box>\d+)\.jpg$")
    rule_text = "'<pid>_c<camera digit>s<sequence>_<frame>_<box>.jpg'"
    example = "0002_c1s1_000451_03.jpg"
