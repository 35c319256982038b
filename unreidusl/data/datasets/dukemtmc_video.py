"""DukeMTMC-VideoReID: ``{train,query,gallery}/<pid>/<tracklet>/*.jpg``.

Frame names ``PPPP_C<c>_F<ffff>_X<xxxxx>.jpg``: ``F`` is the 1-based index inside the tracklet
(frames are ordered by it), ``X`` the frame of the original DukeMTMC video, kept as the frame's
timestamp.  Unlike the original reader (one glob per frame index, gaps skipped silently), each
tracklet folder is listed once, duplicate indices are an error and gaps are reported.

The scan is cached (see ``cache.py``) and re-done when a directory changes.
"""
import logging
import os
import re
from typing import Dict, List, Tuple

from .bases import DATASET_REGISTRY, DatasetFormatError, ReIDDataset, Sample, format_error
from .cache import SplitCache, cache_dir_from_cfg, fingerprint

logger = logging.getLogger(__name__)

FRAME_NAME = re.compile(r"^(?P<pid>-?\d+)_C(?P<cam>\d+)_F(?P<idx>\d+)(?:_X(?P<time>\d+))?[^/]*\.jpg$")
RULE = "'<pid>_C<camera>_F<1-based index>_X<video frame>.jpg' of DukeMTMC-VideoReID"
EXAMPLE = "0001_C6_F0001_X05426.jpg"


def _subdirs(path: str) -> List[os.DirEntry]:
    with os.scandir(path) as it:
        return sorted((e for e in it if e.is_dir()), key=lambda e: e.name)


@DATASET_REGISTRY.register()
class DukeMTMCVideoReID(ReIDDataset):
    """Cameras 1..8 stored 0-based; train pids relabelled, query/gallery pids raw (gallery-only
    identities are distractors with their own pids).  ``DATASETS.MODE "dense"`` cuts the training
    tracklets into chunks of ``DATASETS.DENSE_STEP`` frames."""

    dataset_dir = "DukeMTMC-VideoReID"
    num_cameras = 8
    cache_version = 1
    expected_tree = (
        "DukeMTMC-VideoReID/\n"
        "  train/<pid>/<tracklet>/0001_C6_F0001_X05426.jpg ...\n"
        "  query/<pid>/<tracklet>/...\n"
        "  gallery/<pid>/<tracklet>/..."
    )
    splits = ("train", "query", "gallery")

    def __init__(self, root: str, cfg=None) -> None:
        super().__init__(root, cfg)
        self.dataset_path = os.path.join(root, self.dataset_dir)
        folders = [os.path.join(self.dataset_path, s) for s in self.splits]
        self.check_before_run([self.dataset_path] + folders)
        data = self._scan_cached()
        out = {s: [self._to_sample(rec) for rec in data[s]] for s in self.splits}
        if not out["train"]:
            raise DatasetFormatError(f"{folders[0]} contains no tracklet folder with frames")
        self.train = self.relabel(out["train"])
        self.query, self.gallery = out["query"], out["gallery"]
        self.apply_mode()

    # ------------------------------------------------------------------ scanning
    def _tracklet_dirs(self) -> Tuple[List[Tuple[str, int, str]], str]:
        """[(split, pid, relative tracklet dir)] and the folder fingerprint."""
        dirs, stamps = [], []
        for split in self.splits:
            sp = os.path.join(self.dataset_path, split)
            stamps.append((split, os.stat(sp).st_mtime_ns))
            for pe in _subdirs(sp):
                try:
                    pid = int(pe.name)
                except ValueError:
                    raise format_error(pe.path, "'identity folders are named by an integer pid' of "
                                       "DukeMTMC-VideoReID", "train/0001/0001/",
                                       fix="Rename or remove the folder.") from None
                stamps.append((f"{split}/{pe.name}", pe.stat().st_mtime_ns))
                for te in _subdirs(pe.path):
                    rel = f"{split}/{pe.name}/{te.name}"
                    stamps.append((rel, te.stat().st_mtime_ns))
                    dirs.append((split, pid, rel))
        return dirs, fingerprint(stamps)

    def _scan_cached(self) -> Dict[str, list]:
        dirs, fp = self._tracklet_dirs()
        cache = SplitCache(cache_dir_from_cfg(self.cfg), type(self).__name__, self.cache_version,
                           self.dataset_path)
        data = cache.load(fp, None)
        if data is not None:
            logger.info("%s: split read from the cache %s", self.name, cache.path)
            return data
        data = {s: [] for s in self.splits}
        gaps = []
        for split, pid, rel in dirs:
            rec = self._read_tracklet(pid, rel, gaps)
            if rec is not None:
                data[split].append(rec)
        if gaps:
            logger.warning("%s: %d tracklet folders have gaps in their F indices (e.g. %s); the "
                           "frames present are used in index order", self.name, len(gaps), gaps[0])
        cache.save(fp, None, data)
        return data

    def _read_tracklet(self, pid: int, rel: str, gaps: list):
        folder = os.path.join(self.dataset_path, rel)
        with os.scandir(folder) as it:
            names = [e.name for e in it if e.name.lower().endswith(".jpg")]
        if not names:
            logger.warning("%s: empty tracklet folder %s is skipped", self.name, folder)
            return None
        parsed = []
        cam = None
        for n in names:
            m = FRAME_NAME.match(n)
            if m is None:
                raise format_error(os.path.join(folder, n), RULE, EXAMPLE)
            c = int(m.group("cam"))
            if int(m.group("pid")) != pid:
                raise format_error(os.path.join(folder, n), f"'the pid in a frame name equals its "
                                   f"identity folder ({pid})'", EXAMPLE)
            if not 1 <= c <= self.num_cameras:
                raise format_error(os.path.join(folder, n), f"camera id in 1..{self.num_cameras} "
                                   f"(got {c})", EXAMPLE)
            if cam is None:
                cam = c
            elif c != cam:
                raise format_error(os.path.join(folder, n), f"'all frames of a tracklet come from "
                                   f"one camera' (C{cam} elsewhere in {folder})", EXAMPLE)
            t = m.group("time")
            parsed.append((int(m.group("idx")), n, int(t) if t is not None else None))
        parsed.sort()
        idx = [p[0] for p in parsed]
        for a, b in zip(parsed[:-1], parsed[1:]):
            if a[0] == b[0]:
                raise format_error(os.path.join(folder, b[1]), f"'F indices are unique in a "
                                   f"tracklet' ({a[1]} has the same index)", EXAMPLE)
        if idx[0] != 1 or idx[-1] != len(idx):
            gaps.append(folder)
        times = [p[2] for p in parsed]
        return [rel, [p[1] for p in parsed], pid, cam - 1,
                [] if any(t is None for t in times) else times]

    def _to_sample(self, rec) -> Sample:
        rel, names, pid, camid, times = rec
        folder = os.path.join(self.dataset_path, rel) + os.sep
        return Sample(tuple(folder + n for n in names), pid, camid, tuple(float(t) for t in times))
