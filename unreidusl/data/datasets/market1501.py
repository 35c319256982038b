"""Market-1501 layout (spec 3c-cdsm.md Part C): ``PPPP_cCsS_FFFFFF_BB.jpg``."""
import os
import re
from typing import List

from .bases import DATASET_REGISTRY, DatasetFormatError, ReIDDataset, Sample

MARKET_NAME = re.compile(r"^(-?\d+)_c(\d)s(\d+)_(\d+)_(\d+)\.jpg$")


def list_images(folder: str) -> List[str]:
    return sorted(f for f in os.listdir(folder) if f.lower().endswith(".jpg"))


@DATASET_REGISTRY.register()
class Market1501(ReIDDataset):
    """Junk boxes (pid −1) are dropped everywhere; distractors (pid 0) stay in the gallery.
    Cameras become 0-based; the timestamp of an image is its frame number ``FFFFFF``."""

    dataset_dir = "Market-1501-v15.09.15"
    num_cameras = 6
    expected_tree = (
        "Market-1501-v15.09.15/\n"
        "  bounding_box_train/   0002_c1s1_000451_03.jpg ...\n"
        "  bounding_box_test/    0000_c1s1_000151_01.jpg ... (-1_* junk, 0000_* distractors)\n"
        "  query/                0001_c1s1_001051_00.jpg ..."
    )
    splits = {"train": "bounding_box_train", "query": "query", "gallery": "bounding_box_test"}

    def __init__(self, root: str, cfg=None) -> None:
        super().__init__(root, cfg)
        base = os.path.join(root, self.dataset_dir)
        folders = {k: os.path.join(base, v) for k, v in self.splits.items()}
        self.check_before_run([base] + list(folders.values()))
        self.train = self.relabel(self._read(folders["train"]))
        self.query = self._read(folders["query"])
        self.gallery = self._read(folders["gallery"])
        if not self.train:
            raise DatasetFormatError(f"{folders['train']} contains no .jpg images")

    def _read(self, folder: str) -> List[Sample]:
        samples = []
        for fname in list_images(folder):
            m = MARKET_NAME.match(fname)
            if m is None:
                raise DatasetFormatError(
                    f"{os.path.join(folder, fname)}: file name does not follow the {self.name} rule "
                    f"'<pid>_c<camera digit>s<sequence>_<frame>_<box>.jpg' (e.g. 0002_c1s1_000451_03.jpg). "
                    f"Rename or remove the file."
                )
            pid, cam, _seq, frame, _box = map(int, m.groups())
            if pid == -1:
                continue
            if not 1 <= cam <= self.num_cameras:
                raise DatasetFormatError(
                    f"{os.path.join(folder, fname)}: camera {cam} outside 1..{self.num_cameras}"
                )
            samples.append(Sample((os.path.join(folder, fname),), pid, cam - 1, (float(frame),)))
        return samples
