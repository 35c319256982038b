"""Video (tracklet) layouts: DukeMTMC-VideoReID and MARS.  Every frame of a tracklet is written.

DukeMTMC-VideoReID: ``{train,query,gallery}/<pid>/<tracklet>/<pid>_C<c>_F<ffff>_X<xxxxx>.jpg``
with ``F`` the 1-based frame index inside the tracklet and ``X`` the world frame (25 fps clock,
synchronised cameras).  Tracklet folders are numbered ``0001, 0002, ...`` per pid in time order.
Query: one seeded tracklet per test identity; gallery: its other tracklets plus gallery-only
identities (with their own pids).

MARS: ``bbox_{train,test}/<pid4>/<pid4>C<c>T<tttt>F<fff>.jpg`` (``T`` counts the tracklets of a
pid in a camera, ``F`` is 1-based); distractors (gallery-only identities and false detections)
use pid ``0000``, junk fragments ``00-1`` (pid -1).  ``info/`` holds the name lists, the track
tables ``[start, end, pid, cam]`` (1-based, inclusive rows into the name list, stored as double
like MATLAB) and ``query_IDX`` (1-based rows of the test table; per test identity one tracklet
per camera, as long as every query keeps a cross-camera positive among the gallery rows).  MARS
file names carry no time; ``synthetic_meta.json`` does.
"""
from __future__ import annotations

import io
from collections import defaultdict
from typing import Dict, List, Tuple

import numpy as np

from .counts import fit_mars_queries, fit_world_tracklets
from .plan import Plan, check_limits, tracklets_by_split
from .seeding import rng as make_rng
from .world import Tracklet, World

_MAT_HEADER = b"MATLAB 5.0 MAT-file, Platform: posix, written by unreidusl.data.synthetic"


def mat_bytes(name: str, array: np.ndarray) -> bytes:
    """A MATLAB v5 file holding ``array`` as ``name``, with a fixed (timestamp-free) header."""
    from scipy.io import savemat

    buf = io.BytesIO()
    savemat(buf, {name: array}, do_compression=False, oned_as="row")
    data = bytearray(buf.getvalue())
    data[:116] = _MAT_HEADER.ljust(116, b" ")
    return bytes(data)


def _mars_queries(world: World, test_rows: List[Tuple[str, Tracklet, int]]) -> List[int]:
    """1-based query rows: per test identity, one tracklet per camera (cameras in seeded order)
    as long as every query keeps a positive from another camera in the gallery."""
    by_pid: Dict[int, Dict[int, List[int]]] = defaultdict(lambda: defaultdict(list))
    for row, (_, trk, pid) in enumerate(test_rows):
        if pid > 0:
            by_pid[pid][trk.cam].append(row)
    out: List[int] = []
    for pid, per_cam in sorted(by_pid.items()):
        r = make_rng(world.seed, "mquery", pid)
        cam_of = {row: cam for cam, rows in per_cam.items() for row in rows}
        remaining, chosen = set(cam_of), []
        for cam in (sorted(per_cam)[int(i)] for i in r.permutation(len(per_cam))):
            row = per_cam[cam][int(r.integers(len(per_cam[cam])))]
            rest = remaining - {row}
            if all(any(cam_of[g] != cam_of[q] for g in rest) for q in chosen + [row]):
                chosen.append(row)
                remaining = rest
        out += [row + 1 for row in chosen]
    return sorted(out)


def _split_is(world: World, *splits: str):
    return lambda t: t.kind == "normal" and world.identities[t.uid].split in splits


class DukeMTMCVideoReIDLayout:
    name, dirname, world = "dukemtmc-videoreid", "DukeMTMC-VideoReID", "person"
    video = True  # world from config.VIDEO_PRESETS

    def plan(self, world: World) -> Plan:
        check_limits(world, self.name, max_cam=8, max_pid=9999, max_frame=99_999, max_len=9999)
        if world.cfg.exact_counts:  # full-size preset: exact tracklet counts (counts.py)
            n_train, n_query, n_gallery = world.cfg.exact_counts
            if n_query != world.cfg.num_test_ids:
                raise ValueError(f"{self.name}: one query tracklet per test identity, so the "
                                 f"query count of exact_counts ({n_query}) must equal "
                                 f"num_test_ids ({world.cfg.num_test_ids})")
            world = fit_world_tracklets(world, [
                ("train", _split_is(world, "train"), n_train),
                ("test", _split_is(world, "test", "extra"), n_query + n_gallery)])
        groups = tracklets_by_split(world)
        counters: Dict[int, int] = defaultdict(int)
        numbered: Dict[int, int] = {}
        for trk in sorted(groups["train"] + groups["test"] + groups["extra"],
                          key=lambda t: (t.uid, t.start)):
            counters[trk.uid] += 1
            numbered[trk.tid] = counters[trk.uid]
        by_uid: Dict[int, List[Tracklet]] = defaultdict(list)
        for trk in groups["test"]:
            by_uid[trk.uid].append(trk)
        query = set()
        for uid, trks in sorted(by_uid.items()):
            query.add(trks[int(make_rng(world.seed, "vquery", uid).integers(len(trks)))].tid)

        plan = Plan(world, video=True)
        for split, trks in (("train", groups["train"]), ("test", groups["test"]),
                            ("extra", groups["extra"])):
            for trk in trks:
                out = split if split == "train" else ("query" if trk.tid in query else "gallery")
                pid = trk.uid + 1
                folder = f"{out}/{pid:04d}/{numbered[trk.tid]:04d}"
                paths = [f"{folder}/{pid:04d}_C{trk.cam}_F{i + 1:04d}_X{trk.frame(i):05d}.jpg"
                         for i in range(trk.length)]
                plan.add(trk, out, pid, list(range(trk.length)), paths)
        return plan


class MARSLayout:
    name, dirname, world = "mars", "MARS", "person"
    video = True  # world from config.VIDEO_PRESETS

    def plan(self, world: World) -> Plan:
        check_limits(world, self.name, max_cam=6, max_pid=9999, max_len=999)
        if world.cfg.exact_counts:  # full-size preset: exact tracklet counts (counts.py)
            n_train, n_query, n_gallery = world.cfg.exact_counts
            shown = _split_is(world, "test", "extra")  # + false detections; junk is dropped
            world = fit_world_tracklets(world, [
                ("train", _split_is(world, "train"), n_train),
                ("test", lambda t: shown(t) or t.kind == "false", n_query + n_gallery)])
        groups = tracklets_by_split(world)
        entries: List[Tuple[str, Tracklet, int]] = []  # (split, tracklet, pid)
        entries += [("train", t, t.uid + 1) for t in groups["train"]]
        entries += [("test", t, t.uid + 1) for t in groups["test"]]
        entries += [("test", t, 0) for t in groups["extra"] + groups["false"]]
        entries += [("test", t, -1) for t in groups["junk"]]
        tok = {}
        counters: Dict[Tuple[int, int], int] = defaultdict(int)
        for split, trk, pid in sorted(entries, key=lambda e: (e[2], e[1].cam, e[1].start, e[1].tid)):
            counters[(pid, trk.cam)] += 1
            tok[trk.tid] = counters[(pid, trk.cam)]

        plan = Plan(world, video=True)
        rows: Dict[str, List[Tuple[str, Tracklet, int]]] = {"train": [], "test": []}
        for split, trk, pid in entries:
            p4 = "00-1" if pid < 0 else f"{pid:04d}"
            names = [f"{p4}C{trk.cam}T{tok[trk.tid]:04d}F{i + 1:03d}.jpg" for i in range(trk.length)]
            rows[split].append((names[0], trk, pid))
            plan.add(trk, split, pid, list(range(trk.length)),
                     [f"bbox_{split}/{p4}/{n}" for n in names])
        by_tid = {r["tracklet"]: r for r in plan.records}
        tables = {}
        for split in ("train", "test"):
            ordered = sorted(rows[split], key=lambda r: r[0])
            names, table = [], []
            for _, trk, pid in ordered:
                files = [f.split("/")[-1] for f in by_tid[trk.tid]["files"]]
                table.append([len(names) + 1, len(names) + len(files), pid, trk.cam])
                names += files
            plan.files[f"info/{split}_name.txt"] = ("\n".join(names) + "\n").encode("ascii")
            arr = np.asarray(table, dtype=np.float64).reshape(-1, 4)
            plan.files[f"info/tracks_{split}_info.mat"] = mat_bytes(f"track_{split}_info", arr)
            tables[split] = ordered
        qidx = _mars_queries(world, tables["test"])
        if world.cfg.exact_counts:
            qidx = fit_mars_queries(world, tables["test"], qidx, world.cfg.exact_counts[1])
        plan.files["info/query_IDX.mat"] = mat_bytes("query_IDX", np.asarray(qidx, dtype=np.float64))
        query_tids = {tables["test"][q - 1][1].tid for q in qidx}
        for rec in plan.records:  # bbox_test rows are query (query_IDX) or gallery
            if rec["split"] == "test":
                rec["split"] = "query" if rec["tracklet"] in query_tids else "gallery"
        return plan
