"""One writer per on-disk layout.  Image layouts live here; video layouts in ``writers_video``.

Time fields: every frame number written into a file name is the *world frame* (global clock at
``cfg.fps`` = 25 fps by default, all cameras synchronised, 0 = start of the recording), so
``seconds = frame / fps``.  Market-1501 uses a single sequence ``s1`` per camera, so
``c3s1_000451`` is world frame 451 of camera 3.

Query protocol of the image layouts: for every test identity, one image per camera it appears in
(seeded choice); the gallery holds the remaining test images plus distractors.
"""
from __future__ import annotations

from collections import defaultdict
from typing import Dict, List, Optional, Tuple

from .counts import fit_image_entries
from .plan import Plan, check_limits, sample_indices, tracklets_by_split
from .seeding import rng as make_rng
from .world import Tracklet, World


def _pid_token(pid: int) -> str:
    return "-1" if pid < 0 else f"{pid:04d}"


class ImageLayout:
    """Market-style image layout; subclasses set folders, names, limits and distractor encoding."""

    name = "market1501"
    dirname = "Market-1501-v15.09.15"
    world = "person"
    video = False  # True: the world comes from config.VIDEO_PRESETS
    train_dir, query_dir, gallery_dir = "bounding_box_train", "query", "bounding_box_test"
    max_cam, max_pid, max_frame = 6, 1501, 999_999
    extras: Optional[str] = "zero"  # gallery-only identities: "zero" (pid 0), "own" (own pid), None
    false_dets = True  # false detections written with pid 0
    junk = True  # junk fragments written with pid -1
    query_in_gallery = False  # VeRi: query images are also part of the test folder

    def filename(self, pid: int, cam: int, frame: int, box: int) -> str:
        return f"{_pid_token(pid)}_c{cam}s1_{frame:06d}_{box:02d}.jpg"

    def side_files(self, plan: Plan, items: List[tuple]) -> None:
        """Hook for list files; ``items`` are (split, tracklet, index, pid, relpath)."""

    def plan(self, world: World) -> Plan:
        check_limits(world, self.name, self.max_cam, self.max_pid, self.max_frame)
        cfg = world.cfg
        lo, hi = cfg.images_per_tracklet
        groups = tracklets_by_split(world)
        raw: List[Tuple[str, Tracklet, int, int]] = []
        for trk in groups["train"]:
            raw += [("train", trk, i, trk.uid + 1) for i in sample_indices(world, trk, lo, hi)]
        per_id_cam: Dict[Tuple[int, int], List[Tuple[Tracklet, int]]] = defaultdict(list)
        for trk in groups["test"]:
            for i in sample_indices(world, trk, lo, hi):
                per_id_cam[(trk.uid, trk.cam)].append((trk, i))
        for (uid, cam), cands in sorted(per_id_cam.items()):
            q = int(make_rng(world.seed, "query", uid, cam).integers(len(cands)))
            for j, (trk, i) in enumerate(cands):
                raw.append(("query" if j == q else "gallery", trk, i, uid + 1))
                if j == q and self.query_in_gallery:
                    raw.append(("gallery", trk, i, uid + 1))
        if self.extras:
            for trk in groups["extra"]:
                pid = 0 if self.extras == "zero" else trk.uid + 1
                raw += [("gallery", trk, i, pid) for i in sample_indices(world, trk, lo, hi)]
        if self.false_dets:
            for trk in groups["false"]:
                raw += [("gallery", trk, i, 0) for i in sample_indices(world, trk, 1, 2)]
        if self.junk:
            for trk in groups["junk"]:
                raw += [("gallery", trk, i, -1) for i in sample_indices(world, trk, 1, 2)]
        if cfg.exact_counts:  # full-size presets: the real dataset's counts, exactly (counts.py)
            if self.query_in_gallery:
                raise ValueError(f"{self.name}: exact_counts is not supported by this layout")
            raw = fit_image_entries(world, raw, cfg.exact_counts)

        # box index: 1, 2, ... among all boxes of the same camera and world frame
        boxes: Dict[Tuple[int, int], List[Tuple[int, int]]] = defaultdict(list)
        for _, trk, i, _ in raw:
            key = (trk.cam, trk.frame(i))
            if (trk.tid, i) not in boxes[key]:
                boxes[key].append((trk.tid, i))
        box_of = {}
        for key, members in boxes.items():
            for b, m in enumerate(sorted(members), start=1):
                box_of[m] = b

        folder = {"train": self.train_dir, "query": self.query_dir, "gallery": self.gallery_dir}
        plan = Plan(world)
        grouped: Dict[Tuple[str, int], List[tuple]] = {}
        items = []
        for split, trk, i, pid in raw:
            rel = f"{folder[split]}/{self.filename(pid, trk.cam, trk.frame(i), box_of[(trk.tid, i)])}"
            grouped.setdefault((split, trk.tid), []).append((trk, i, pid, rel))
            items.append((split, trk, i, pid, rel))
        for (split, _), lst in grouped.items():
            plan.add(lst[0][0], split, lst[0][2], [x[1] for x in lst], [x[3] for x in lst])
        self.side_files(plan, items)
        return plan


class Market1501Layout(ImageLayout):
    """``Market-1501-v15.09.15``: ``0002_c1s1_000451_03.jpg``; distractors ``0000``, junk ``-1``."""


class DukeMTMCreIDLayout(ImageLayout):
    """``DukeMTMC-reID``: ``0001_c2_f0046182.jpg``; gallery-only ids keep their own pids, no junk."""

    name, dirname = "dukemtmcreid", "DukeMTMC-reID"
    max_cam, max_pid, max_frame = 8, 9999, 9_999_999
    extras, false_dets, junk = "own", False, False

    def filename(self, pid, cam, frame, box):
        return f"{pid:04d}_c{cam}_f{frame:07d}.jpg"


def _text(lines: List[str]) -> bytes:
    return ("\n".join(lines) + "\n").encode("ascii") if lines else b""


class MSMT17Layout(ImageLayout):
    """``MSMT17_V1`` in the Market-style repackaging: ``0001_c12_0004567_01.jpg`` (cams 1..15).

    Also writes ``list_train.txt``, ``list_query.txt`` and ``list_gallery.txt`` with lines
    ``<path relative to the dataset folder> <pid>`` (raw pids, no distractors or junk)."""

    name, dirname = "msmt17", "MSMT17_V1"
    max_cam, max_pid, max_frame = 15, 9999, 9_999_999
    extras, false_dets, junk = None, False, False

    def filename(self, pid, cam, frame, box):
        return f"{pid:04d}_c{cam}_{frame:07d}_{box:02d}.jpg"

    def side_files(self, plan, items):
        for split in ("train", "query", "gallery"):
            lines = sorted(f"{rel} {pid}" for s, _, _, pid, rel in items if s == split)
            plan.files[f"list_{split}.txt"] = _text(lines)


class VeRiLayout(ImageLayout):
    """``VeRi``: ``image_{train,query,test}/0002_c002_00030600_0.jpg`` (vehicles, cams 1..20).

    The third field is the world frame (8 digits).  Query images are also copied into
    ``image_test`` as in VeRi-776.  Writes ``name_{train,query,test}.txt`` (sorted file names)
    and ``gt_image.txt`` / ``jk_image.txt`` (per query line: test images of the same vehicle in
    other cameras / in the same camera)."""

    name, dirname, world = "veri", "VeRi", "vehicle"
    train_dir, query_dir, gallery_dir = "image_train", "image_query", "image_test"
    max_cam, max_pid, max_frame = 20, 776, 99_999_999
    extras, false_dets, junk, query_in_gallery = None, False, False, True

    def filename(self, pid, cam, frame, box):
        return f"{pid:04d}_c{cam:03d}_{frame:08d}_0.jpg"

    def side_files(self, plan, items):
        names = {s: sorted({rel.split("/")[1] for sp, _, _, _, rel in items if sp == s})
                 for s in ("train", "query", "gallery")}
        plan.files["name_train.txt"] = _text(names["train"])
        plan.files["name_query.txt"] = _text(names["query"])
        plan.files["name_test.txt"] = _text(names["gallery"])
        gal = [(n, int(n[:4]), int(n[6:9])) for n in names["gallery"]]
        gt, jk = [], []
        for q in names["query"]:
            pid, cam = int(q[:4]), int(q[6:9])
            gt.append(" ".join(n for n, p, c in gal if p == pid and c != cam))
            jk.append(" ".join(n for n, p, c in gal if p == pid and c == cam))
        plan.files["gt_image.txt"] = ("\n".join(gt) + "\n").encode("ascii")
        plan.files["jk_image.txt"] = ("\n".join(jk) + "\n").encode("ascii")


def _layouts():
    from .writers_video import DukeMTMCVideoReIDLayout, MARSLayout
    return [Market1501Layout(), DukeMTMCVideoReIDLayout(), DukeMTMCreIDLayout(), MSMT17Layout(),
            VeRiLayout(), MARSLayout()]


LAYOUTS = {lay.name: lay for lay in _layouts()}
FORMATS: Tuple[str, ...] = tuple(LAYOUTS)
DATASET_DIRNAMES: Dict[str, str] = {k: v.dirname for k, v in LAYOUTS.items()}


def get_layout(fmt: str) -> ImageLayout:
    """The writer of format ``fmt`` (one of :data:`FORMATS`)."""
    try:
        return LAYOUTS[fmt]
    except KeyError:
        raise ValueError(f"unknown synthetic format {fmt!r}; choose from {list(FORMATS)}") from None
