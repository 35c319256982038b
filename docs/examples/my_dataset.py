"""Template: a dataset plugin for your own data (copy, rename, adapt the marked parts).

Use it with ``PLUGINS ['docs/examples/my_dataset.py'] DATASETS.TRAIN MyDataset DATASETS.TEST
MyDataset DATASETS.ROOT /path/to/datasets``.  It reads this tree (one image per sample)::

    <DATASETS.ROOT>/MyDataset/
        train/    0001_c1_0001.png ...     <pid>_c<camera, 1-based>_<frame>.png
        query/    0003_c1_0004.png ...
        gallery/  0003_c2_0005.png ...

A reader only has to fill three lists of ``Sample(frames, pid, camid, timestamps)``:

* ``frames``: a tuple of image paths in temporal order (one path for an image dataset);
* ``pid``: the identity (train pids are relabelled 0..P-1 below; -1 = unknown identity);
* ``camid``: the camera, **0-based**;
* ``timestamps``: one number per frame on a common clock (e.g. the frame number), or ``()``.

Do not open images here (loading must stay fast); raise ``DatasetFormatError`` naming the file
and the rule it broke, and call ``check_before_run`` so a missing folder prints ``expected_tree``.
See docs/custom_dataset.md (and ``ListDataset`` for data described by list files, no code).
"""
import os
import re

from unreidusl.data.datasets import DATASET_REGISTRY, ReIDDataset, Sample
from unreidusl.data.datasets.bases import format_error

# --- adapt: how a file name encodes identity, camera and time -----------------------------
NAME = re.compile(r"^(?P<pid>-?\d+)_c(?P<cam>\d+)_(?P<frame>\d+)\.png$")
RULE = "'<pid>_c<camera>_<frame>.png' of MyDataset"
EXAMPLE = "0001_c1_0001.png"


@DATASET_REGISTRY.register()
class MyDataset(ReIDDataset):
    dataset_dir = "MyDataset"  # --- adapt: the folder under DATASETS.ROOT
    expected_tree = (
        "MyDataset/\n"
        "  train/    0001_c1_0001.png ...\n"
        "  query/    0003_c1_0004.png ...\n"
        "  gallery/  0003_c2_0005.png ..."
    )

    def __init__(self, root: str, cfg=None) -> None:
        super().__init__(root, cfg)
        base = os.path.join(root, self.dataset_dir)
        folders = {split: os.path.join(base, split) for split in ("train", "query", "gallery")}
        self.check_before_run([base] + list(folders.values()))
        self.train = self.relabel(self._read(folders["train"]))
        self.query = self._read(folders["query"])
        self.gallery = self._read(folders["gallery"])
        if cfg is not None:
            self.apply_mode()  # DATASETS.MODE "dense" for video data (no-op for images)

    def _read(self, folder: str):
        samples = []
        for name in sorted(os.listdir(folder)):
            if not name.lower().endswith(".png"):
                continue
            m = NAME.match(name)
            if m is None:
                raise format_error(os.path.join(folder, name), RULE, EXAMPLE)
            pid, cam, frame = int(m.group("pid")), int(m.group("cam")), int(m.group("frame"))
            samples.append(Sample((os.path.join(folder, name),), pid, cam - 1, (float(frame),)))
        return samples
