"""The output of a layout writer: which frames to render where, plus metadata and side files."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, List, Sequence

from .seeding import rng as make_rng
from .world import Tracklet, World


@dataclass
class Plan:
    """``jobs[tid][i]`` lists the relative paths that receive frame ``i`` of tracklet ``tid``;
    ``records`` is the per-(tracklet, split) metadata; ``files`` holds extra files' bytes;
    ``video``: a sample is a tracklet (video layouts), not an image."""

    world: World
    jobs: Dict[int, Dict[int, List[str]]] = field(default_factory=dict)
    records: List[dict] = field(default_factory=list)
    files: Dict[str, bytes] = field(default_factory=dict)
    video: bool = False

    def add(self, trk: Tracklet, split: str, pid: int, indices: Sequence[int],
            paths: Sequence[str]) -> dict:
        """Register frames ``indices`` of ``trk`` written to ``paths`` under ``split``."""
        assert len(indices) == len(paths)
        for i, path in zip(indices, paths):
            self.jobs.setdefault(trk.tid, {}).setdefault(int(i), []).append(path)
        fps = self.world.cfg.fps
        rec = {
            "tracklet": trk.tid, "split": split, "identity": trk.uid, "pid": pid,
            "camera": trk.cam, "kind": trk.kind,
            "start_frame": trk.start, "end_frame": trk.end,
            "start_s": round(trk.start / fps, 4), "end_s": round(trk.end / fps, 4),
            "frames": [trk.frame(int(i)) for i in indices], "files": list(paths),
        }
        self.records.append(rec)
        return rec

    def num_images(self) -> int:
        return sum(len(p) for per in self.jobs.values() for p in per.values())


def sample_indices(world: World, trk: Tracklet, lo: int, hi: int) -> List[int]:
    """Seeded, sorted choice of frame indices (image layouts sample a few frames per tracklet)."""
    r = make_rng(world.seed, "imgsample", trk.tid)
    k = min(trk.length, int(r.integers(lo, hi + 1)))
    return sorted(int(i) for i in r.choice(trk.length, size=k, replace=False))


def tracklets_by_split(world: World) -> Dict[str, List[Tracklet]]:
    """Group tracklets into ``train``, ``test``, ``extra`` (normal kind), ``junk`` and ``false``."""
    out: Dict[str, List[Tracklet]] = {k: [] for k in ("train", "test", "extra", "junk", "false")}
    for trk in world.tracklets:
        key = trk.kind if trk.kind != "normal" else world.split_of(trk)
        out[key].append(trk)
    return out


def check_limits(world: World, fmt: str, max_cam: int, max_pid: int = 9999,
                 max_frame: int = 0, max_len: int = 0) -> None:
    """Raise ``ValueError`` if the world cannot be encoded in a layout's fixed-width fields."""
    cfg = world.cfg
    if cfg.num_cameras > max_cam:
        raise ValueError(f"{fmt}: num_cameras={cfg.num_cameras} exceeds the layout's {max_cam}")
    if len(world.identities) > max_pid:
        raise ValueError(f"{fmt}: {len(world.identities)} identities exceed the layout's pid "
                         f"limit {max_pid}")
    last = max(t.end for t in world.tracklets)
    if max_frame and last > max_frame:
        raise ValueError(f"{fmt}: last frame {last} does not fit (max {max_frame}); reduce "
                         "entry_span_s or map_size_m")
    if max_len and cfg.tracklet_len[1] > max_len:
        raise ValueError(f"{fmt}: tracklet_len up to {cfg.tracklet_len[1]} exceeds {max_len}")
