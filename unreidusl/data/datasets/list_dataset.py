"""A dataset described by list files, so that a user's own data needs no code at all.

Configure ``DATASETS.TRAIN "ListDataset"`` (and/or TEST) with ``DATASETS.LIST.TRAIN``,
``DATASETS.LIST.QUERY`` and ``DATASETS.LIST.GALLERY`` (paths relative to ``DATASETS.ROOT``
unless absolute).  One line per image or tracklet, fields separated by whitespace (or by tabs
only, when the line contains a tab, so that paths may hold spaces)::

    # path(s)                                   pid  camid  [timestamp(s)]
    cam1/000123.jpg                              7    0      123
    tracks/0007_a/f1.jpg,tracks/0007_a/f2.jpg    7    1      4410,4415
    tracks/0007_b/                               7    2

* paths are relative to the list file's folder; several frames of a tracklet are joined by
  commas; a folder stands for all its images (``.jpg``, ``.jpeg``, ``.png``, ``.bmp``) in natural
  order (``f2`` before ``f10``);
* ``camid`` counts from ``DATASETS.LIST.CAMID_BASE`` (0 or 1) and is stored 0-based;
* timestamps are optional: one per frame (comma-separated), in any clock unit;
* ``pid -1`` marks an unknown identity in train (kept: unsupervised training needs no labels)
  and junk in query/gallery (dropped).  Train pids are relabelled 0..P-1 when all are known.
"""
import os
import re
from typing import List

from .bases import DATASET_REGISTRY, DatasetFormatError, ReIDDataset, Sample, format_error

IMAGE_EXTS = (".jpg", ".jpeg", ".png", ".bmp")
LINE_RULE = "'<path>[,<path>...] <pid> <camid> [<timestamp>[,<timestamp>...]]'"
_DIGITS = re.compile(r"(\d+)")


def natural_key(name: str):
    return [int(t) if t.isdigit() else t for t in _DIGITS.split(name)]


def _number(text: str, kind):
    try:
        return kind(text)
    except ValueError:
        return None


@DATASET_REGISTRY.register()
class ListDataset(ReIDDataset):
    expected_tree = (
        "<DATASETS.ROOT>/\n"
        "  <DATASETS.LIST.TRAIN>     e.g. train.txt: lines '<path(s)> <pid> <camid> [<timestamp(s)>]'\n"
        "  <DATASETS.LIST.QUERY>     e.g. query.txt\n"
        "  <DATASETS.LIST.GALLERY>   e.g. gallery.txt"
    )
    dataset_dir = "<list files>"

    def __init__(self, root: str, cfg) -> None:
        super().__init__(root, cfg)
        lc = cfg.DATASETS.LIST
        self.camid_base = int(lc.CAMID_BASE)
        paths = {k: (os.path.join(root, v) if v and not os.path.isabs(v) else v)
                 for k, v in (("train", lc.TRAIN), ("query", lc.QUERY), ("gallery", lc.GALLERY))}
        if not any(paths.values()):
            raise ValueError("ListDataset needs DATASETS.LIST.TRAIN and/or DATASETS.LIST.QUERY + "
                             "DATASETS.LIST.GALLERY (list files, see docs/custom_dataset.md)")
        self.check_before_run([p for p in paths.values() if p])
        if paths["train"]:
            train = self.read_list(paths["train"], keep_unknown=True)
            self.train = self.relabel(train) if all(s.pid >= 0 for s in train) else train
        if paths["query"]:
            self.query = self.read_list(paths["query"], keep_unknown=False)
        if paths["gallery"]:
            self.gallery = self.read_list(paths["gallery"], keep_unknown=False)
        self.apply_mode()

    def _expand(self, path: str) -> List[str]:
        if os.path.isdir(path):
            with os.scandir(path) as it:
                names = sorted((e.name for e in it if e.name.lower().endswith(IMAGE_EXTS)),
                               key=natural_key)
            return [os.path.join(path, n) for n in names]
        return [path]

    def read_list(self, list_path: str, keep_unknown: bool) -> List[Sample]:
        base = os.path.dirname(os.path.abspath(list_path))
        out: List[Sample] = []
        with open(list_path, "r", encoding="utf-8") as f:
            for lineno, line in enumerate(f, 1):
                text = line.rstrip("\r\n")
                if not text.strip() or text.lstrip().startswith("#"):
                    continue
                fields = [x for x in text.split("\t")] if "\t" in text else text.split()
                fields = [x.strip() for x in fields if x.strip()]
                where = f"{list_path}:{lineno}"
                if len(fields) not in (3, 4):
                    raise format_error(where, LINE_RULE, "cam1/000123.jpg 7 0 123",
                                       fix=f"Got {len(fields)} fields in {text!r}.")
                pid, cam = _number(fields[1], int), _number(fields[2], int)
                if pid is None or cam is None:
                    raise format_error(where, LINE_RULE + " with integer pid and camid",
                                       "cam1/000123.jpg 7 0 123", fix=f"Got {text!r}.")
                if cam < self.camid_base:
                    raise format_error(where, f"camid >= DATASETS.LIST.CAMID_BASE "
                                       f"({self.camid_base})", fix=f"Got camid {cam}.")
                frames: List[str] = []
                for p in fields[0].split(","):
                    frames += self._expand(p if os.path.isabs(p) else os.path.join(base, p))
                if not frames:
                    raise DatasetFormatError(f"{where}: the folder {fields[0]} holds no image "
                                             f"({', '.join(IMAGE_EXTS)})")
                ts = ()
                if len(fields) == 4:
                    vals = [_number(t, float) for t in fields[3].split(",")]
                    if any(v is None for v in vals) or len(vals) != len(frames):
                        raise format_error(where, f"'one numeric timestamp per frame' ({len(frames)} "
                                           f"frames)", "a,b 7 0 100,105", fix=f"Got {fields[3]!r}.")
                    ts = tuple(vals)
                if pid == -1 and not keep_unknown:
                    continue
                out.append(Sample(tuple(frames), pid, cam - self.camid_base, ts))
        return out
