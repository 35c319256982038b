"""The simulated world: identities walking through a camera network, cut into tracklets.

Time is a single global clock in *world frames* at ``cfg.fps`` frames per second, shared by all
cameras (they are synchronised; frame 0 is the start of the recording).  A tracklet covers the
world frames ``start, start + stride, ..., start + (length - 1) * stride``.

Identity ``uid`` (0-based) always has dataset pid ``uid + 1``; its split (``train``, ``test`` or
``extra`` = gallery-only distractor) is drawn by a seeded permutation, so train and test pids
interleave as in the real datasets.  A person's tracklets never overlap in time (one place at a
time); different people do overlap, inside a camera and across cameras.

Tracklet kinds: ``normal`` (a real track), ``junk`` (a badly cropped fragment of a test track,
overlapping it in time; pid -1 where a layout has junk) and ``false`` (a false detection showing
only background, ``uid == -1``; pid 0 where a layout has distractors).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Dict, List, Tuple

import numpy as np

from .attributes import person_attributes, vehicle_attributes
from .cameras import CameraNetwork, build_network
from .config import WorldConfig
from .seeding import rng as make_rng


@dataclass(frozen=True, eq=False)
class Identity:
    uid: int
    pid: int
    split: str  # "train" | "test" | "extra"
    attrs: Dict[str, Any]


@dataclass(frozen=True)
class Tracklet:
    tid: int
    uid: int  # -1 for false detections
    cam: int  # 1-based
    start: int  # world frame of the first frame
    length: int  # number of frames
    stride: int  # world frames between consecutive frames
    kind: str = "normal"  # "normal" | "junk" | "false"
    parent: int = -1  # junk: tid of the track it fragments

    @property
    def end(self) -> int:
        """World frame of the last frame (inclusive)."""
        return self.start + (self.length - 1) * self.stride

    def frame(self, i: int) -> int:
        """World frame of the ``i``-th (0-based) frame."""
        return self.start + i * self.stride


@dataclass(frozen=True, eq=False)
class World:
    seed: int
    cfg: WorldConfig
    network: CameraNetwork
    identities: Tuple[Identity, ...]
    tracklets: Tuple[Tracklet, ...]

    def identity(self, uid: int) -> Identity:
        return self.identities[uid]

    def split_of(self, trk: Tracklet) -> str:
        """``train``/``test``/``extra`` for identities, ``false`` for false detections."""
        return "false" if trk.uid < 0 else self.identities[trk.uid].split


def _walk(r: np.random.Generator, net: CameraNetwork, n_min: int, n_max: int) -> List[int]:
    """A random path of distinct connected cameras with length in [n_min, n_max]."""
    n_cams = len(net.cameras)
    target = int(r.integers(n_min, n_max + 1))
    best: List[int] = []
    for _ in range(50):
        path = [int(r.integers(1, n_cams + 1))]
        while len(path) < target:
            nxt = [c for c in net.neighbours(path[-1]) if c not in path]
            if not nxt:
                break
            path.append(int(nxt[int(r.integers(len(nxt)))]))
        if len(path) > len(best):
            best = path
        if len(path) >= n_min:
            return path
    return best


def _trajectory(seed: int, cfg: WorldConfig, net: CameraNetwork, ident: Identity) -> List[tuple]:
    """(cam, start_frame, length) triples of one identity, in time order."""
    r = make_rng(seed, "traj", ident.uid)
    lo, hi = cfg.extra_cams_per_id if ident.split == "extra" else cfg.cams_per_id
    path = _walk(r, net, lo, hi)
    speed = float(np.exp(r.normal(0.0, 0.1)))
    t = r.uniform(0.0, cfg.entry_span_s) * cfg.fps
    out = []
    for ci, cam in enumerate(path):
        n_trk = 1
        while n_trk < cfg.max_tracklets_per_cam and r.random() < cfg.second_tracklet_prob:
            n_trk += 1
        for k in range(n_trk):
            length = int(r.integers(cfg.tracklet_len[0], cfg.tracklet_len[1] + 1))
            start = int(round(t))
            out.append((cam, start, length))
            end = start + (length - 1) * cfg.frame_stride
            t = end + cfg.frame_stride + r.uniform(0.5, 3.0) * cfg.fps  # re-detected after a gap
        if ci + 1 < len(path):
            mean, sigma = net.transit[(cam, path[ci + 1])]
            transit = mean * speed * float(np.exp(r.normal(0.0, sigma)))
            t = end + transit * cfg.fps
    return out


def build_world(seed: int, cfg: WorldConfig) -> World:
    """Generate the complete world (cameras, identities, tracklets) from ``seed`` and ``cfg``."""
    net = build_network(seed, cfg)
    n_tr, n_te, n_ex = cfg.num_train_ids, cfg.num_test_ids, cfg.num_extra_ids
    splits = np.array(["train"] * n_tr + ["test"] * n_te + ["extra"] * n_ex)
    splits = splits[make_rng(seed, "splits").permutation(len(splits))]
    attr_fn = vehicle_attributes if cfg.world == "vehicle" else person_attributes
    idents = tuple(Identity(u, u + 1, str(splits[u]), attr_fn(make_rng(seed, "attrs", u), cfg))
                   for u in range(len(splits)))

    tracks: List[Tracklet] = []
    for ident in idents:
        for cam, start, length in _trajectory(seed, cfg, net, ident):
            tracks.append(Tracklet(len(tracks), ident.uid, cam, start, length, cfg.frame_stride))

    normal = list(tracks)
    for trk in normal:  # junk fragments of test tracks
        if idents[trk.uid].split != "test":
            continue
        r = make_rng(seed, "junk", trk.tid)
        if r.random() >= cfg.junk_rate:
            continue
        off = int(r.integers(0, trk.length))
        length = int(r.integers(1, min(4, trk.length - off) + 1))
        tracks.append(Tracklet(len(tracks), trk.uid, trk.cam, trk.frame(off), length, trk.stride,
                               "junk", trk.tid))

    horizon = max(t.end for t in normal) if normal else cfg.fps
    for cam in range(1, cfg.num_cameras + 1):  # false detections (background only)
        for j in range(cfg.false_dets_per_cam):
            r = make_rng(seed, "false", cam, j)
            length = int(r.integers(cfg.tracklet_len[0], cfg.tracklet_len[1] + 1))
            start = int(r.integers(0, max(1, horizon - length * cfg.frame_stride)))
            tracks.append(Tracklet(len(tracks), -1, cam, start, length, cfg.frame_stride, "false"))
    return World(seed, cfg, net, idents, tuple(tracks))


def world_summary(world: World) -> Dict[str, Any]:
    """Counts and time statistics of a world (for quick inspection)."""
    normal = [t for t in world.tracklets if t.kind == "normal"]
    per_cam: Dict[int, List[Tracklet]] = {}
    for t in normal:
        per_cam.setdefault(t.cam, []).append(t)
    overlaps = 0
    for ts in per_cam.values():
        ts = sorted(ts, key=lambda t: t.start)
        for i, a in enumerate(ts):
            for b in ts[i + 1:]:
                if b.start > a.end:
                    break
                overlaps += int(a.uid != b.uid)
    return {
        "tracklets": len(normal),
        "junk": sum(t.kind == "junk" for t in world.tracklets),
        "false": sum(t.kind == "false" for t in world.tracklets),
        "last_frame": max(t.end for t in world.tracklets),
        "same_camera_overlapping_pairs": overlaps,
        "edges": len(world.network.transit) // 2,
    }
