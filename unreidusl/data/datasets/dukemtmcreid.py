"""DukeMTMC-reID: ``PPPP_cC_fFFFFFFF.jpg``."""
import re

from .bases import DATASET_REGISTRY
from .market1501 import ImageFolderDataset


@DATASET_REGISTRY.register()
class DukeMTMCreID(ImageFolderDataset):
    """Cameras 1..8 (stored 0-based); the timestamp of an image is its frame ``fFFFFFFF`` in the
    DukeMTMC videos.  Gallery-only identities (distractors) keep their own pids; pid −1 would be
    dropped as junk (the official release has none)."""

    dataset_dir = "DukeMTMC-reID"
    num_cameras = 8
    expected_tree = (
        "DukeMTMC-reID/\n"
        "  bounding_box_train/   0001_c2_f0046182.jpg ...\n"
        "  bounding_box_test/    0002_c1_f0044158.jpg ...\n"
        "  query/                0005_c2_f0046985.jpg ..."
    )
    splits = {"train": "bounding_box_train", "query": "query", "gallery": "bounding_box_test"}
    name_rule = re.compile(r"^(?P<pid>-?\d+)_c(?P<cam>\d+)_f(?P<time>\d+)\.jpg$")
    rule_text = "'<pid>_c<camera>_f<frame>.jpg'"
    example = "0001_c2_f0046182.jpg"
