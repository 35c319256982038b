"""MSMT17 in its three published layouts.

* Market-style repackaging (as distributed with SpCL): ``bounding_box_train/``, ``query/``,
  ``bounding_box_test/`` with names ``<pid>_c<cam>_<frame>[_...].jpg``;
* the original ``MSMT17_V1`` release: ``train/<pid>/*.jpg``, ``test/<pid>/*.jpg`` and the list
  files ``list_train.txt``, ``list_val.txt``, ``list_query.txt``, ``list_gallery.txt`` (lines
  ``<pid>/<name>.jpg <pid>``; names ``<pid>_<index>_<cam>_<date><time-of-day>_<frame>_<k>.jpg``);
* ``MSMT17_V2``: the same lists with the images in ``mask_train_v2/`` and ``mask_test_v2/``.

The layout is detected from the folders present.  Training is ``list_train`` + ``list_val``
(32,621 images of 1,041 ids in the official release), as in the usual protocol.
"""
import os
import re
from typing import List

from .bases import DATASET_REGISTRY, DatasetFormatError, Sample, format_error
from .market1501 import ImageFolderDataset

ORIGINAL_NAME = re.compile(r"^(?P<pid>\d+)_(?P<idx>\d+)_(?P<cam>\d+)_[^/]*\.jpg$")


@DATASET_REGISTRY.register()
class MSMT17(ImageFolderDataset):
    """Cameras 1..15 stored 0-based; pid −1 dropped.  Timestamps: the frame field of the
    Market-style names; ``()`` for the original releases (their names carry no clock)."""

    dataset_dir = "MSMT17_V1"
    candidates = ("MSMT17_V1", "MSMT17_V2", "MSMT17")
    num_cameras = 15
    expected_tree = (
        "MSMT17_V1/ (or MSMT17_V2/, MSMT17/), one of:\n"
        "  Market-style:  bounding_box_train/  query/  bounding_box_test/   0001_c12_0004567_01.jpg ...\n"
        "  original V1:   train/<pid>/  test/<pid>/  list_train.txt list_val.txt list_query.txt "
        "list_gallery.txt\n"
        "  original V2:   mask_train_v2/<pid>/  mask_test_v2/<pid>/  + the same list_*.txt"
    )
    splits = {"train": "bounding_box_train", "query": "query", "gallery": "bounding_box_test"}
    name_rule = re.compile(r"^(?P<pid>-?\d+)_c(?P<cam>\d+)(?:_(?P<time>\d+))?(?:_[^.]*)?\.jpg$")
    rule_text = "'<pid>_c<camera>_<frame>[_<anything>].jpg'"
    example = "0001_c12_0004567_01.jpg"
    original_dirs = (("train", "test"), ("mask_train_v2", "mask_test_v2"))

    def __init__(self, root: str, cfg=None) -> None:
        for cand in self.candidates:
            if os.path.isdir(os.path.join(root, cand)):
                self.dataset_dir = cand
                break
        base = os.path.join(root, self.dataset_dir)
        self.layout = "market"
        for train_dir, test_dir in self.original_dirs:
            if (not os.path.isdir(os.path.join(base, "bounding_box_train"))
                    and os.path.isdir(os.path.join(base, train_dir))):
                self.layout, self.image_dirs = "original", (train_dir, test_dir)
                break
        if self.layout == "original":
            self.splits = {"train": self.image_dirs[0], "query": self.image_dirs[1],
                           "gallery": self.image_dirs[1]}
        super().__init__(root, cfg)

    def load(self, folders) -> None:
        if self.layout == "market":
            return super().load(folders)
        lists = {k: os.path.join(self.dataset_path, f"list_{k}.txt")
                 for k in ("train", "val", "query", "gallery")}
        self.check_before_run([lists["train"], lists["query"], lists["gallery"]])
        train = self.read_list(lists["train"], folders["train"])
        if os.path.isfile(lists["val"]):
            train += self.read_list(lists["val"], folders["train"])
        self.train = self.relabel(train)
        self.query = self.read_list(lists["query"], folders["query"])
        self.gallery = self.read_list(lists["gallery"], folders["gallery"])

    def read_list(self, list_path: str, image_dir: str) -> List[Sample]:
        """Lines ``<relative path> <pid>``; paths relative to ``image_dir`` (or the dataset dir)."""
        rule = "'<pid>/<pid>_<index>_<camera>_<...>.jpg <pid>' of the MSMT17 list files"
        example = "0000/0000_000_01_0303morning_0015_0.jpg 0"
        with open(list_path, "r", encoding="utf-8") as f:
            lines = [(i, line.split()) for i, line in enumerate(f, 1) if line.strip()]
        if not lines:
            raise DatasetFormatError(f"{list_path} is empty")
        base = image_dir
        first = lines[0][1][0]
        if not os.path.exists(os.path.join(image_dir, first)):
            if os.path.exists(os.path.join(self.dataset_path, first)):
                base = self.dataset_path
            else:
                raise format_error(f"{list_path}:1", f"'paths are relative to {image_dir}'",
                                   fix=f"{first} was found neither there nor in {self.dataset_path}.")
        out = []
        for lineno, fields in lines:
            if len(fields) != 2 or not fields[1].lstrip("-").isdigit():
                raise format_error(f"{list_path}:{lineno}", rule, example)
            m = ORIGINAL_NAME.match(os.path.basename(fields[0]))
            if m is None:
                raise format_error(f"{list_path}:{lineno} ({fields[0]})", rule, example)
            pid, cam = int(fields[1]), int(m.group("cam"))
            if not 1 <= cam <= self.num_cameras:
                raise format_error(f"{list_path}:{lineno} ({fields[0]})",
                                   f"camera id in 1..{self.num_cameras} (got {cam})", example)
            if pid == self.junk_pid:
                continue
            out.append(Sample((os.path.join(base, fields[0]),), pid, cam - 1, ()))
        return out
