"""VeRi-776 (vehicles): ``image_{train,query,test}/VVVV_cCCC_TTTTTTTT_X.jpg`` plus name lists."""
import logging
import os
import re
from typing import Dict, List

from .bases import DATASET_REGISTRY, Sample, format_error
from .market1501 import ImageFolderDataset, list_images

logger = logging.getLogger(__name__)


@DATASET_REGISTRY.register()
class VeRi(ImageFolderDataset):
    """The split of each folder is the official name list (``name_train.txt``,
    ``name_query.txt``, ``name_test.txt``) when present, else the folder's ``.jpg`` files.
    Cameras ``c001``..``c020`` are stored 0-based; the timestamp is the third field (the frame).
    Query images are also in ``image_test``; the evaluation protocol (same vehicle and same
    camera removed, i.e. ``jk_image.txt``) takes care of them."""

    dataset_dir = "VeRi"
    num_cameras = 20
    expected_tree = (
        "VeRi/\n"
        "  image_train/    0001_c001_00016450_0.jpg ...\n"
        "  image_query/    0002_c002_00030600_1.jpg ...\n"
        "  image_test/     0002_c002_00030600_1.jpg ...\n"
        "  name_train.txt  name_query.txt  name_test.txt   (optional: one file name per line)"
    )
    splits = {"train": "image_train", "query": "image_query", "gallery": "image_test"}
    lists = {"train": "name_train.txt", "query": "name_query.txt", "gallery": "name_test.txt"}
    name_rule = re.compile(r"^(?P<pid>-?\d+)_c(?P<cam>\d+)_(?P<time>\d+)_(?P<idx>\d+)\.jpg$")
    rule_text = "'<vehicle id>_c<camera, 3 digits>_<frame>_<index>.jpg'"
    example = "0002_c002_00030600_0.jpg"

    def load(self, folders: Dict[str, str]) -> None:
        out = {split: self._read_split(split, folder) for split, folder in folders.items()}
        self.train = self.relabel(out["train"])
        self.query, self.gallery = out["query"], out["gallery"]

    def _read_split(self, split: str, folder: str) -> List[Sample]:
        list_path = os.path.join(self.dataset_path, self.lists[split])
        if not os.path.isfile(list_path):
            return self.read_folder(folder)
        with open(list_path, "r", encoding="utf-8") as f:
            names = [line.strip() for line in f if line.strip()]
        on_disk = set(list_images(folder, self.extensions))
        for lineno, n in enumerate(names, 1):
            if n not in on_disk:
                raise format_error(f"{list_path}:{lineno}",
                                   f"'every name in {self.lists[split]} is a file in "
                                   f"{self.splits[split]}/' ({n} is missing)", fix="Restore the file "
                                   "or remove the line.")
        extra = len(on_disk) - len(set(names))
        if extra:
            logger.warning("%s: %d files in %s are not in %s and are ignored", self.name, extra,
                           folder, self.lists[split])
        return self.read_folder(folder, names)
