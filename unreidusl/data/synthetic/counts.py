"""The count-matching step: exact dataset sizes for worlds with ``WorldConfig.exact_counts``.

The simulation gives counts close to a preset's targets; this last step moves them onto the
targets exactly and deterministically (every choice comes from a seeded stream keyed by what it
decides, ``seeding.rng``), while keeping the structure the evaluation depends on:

* **Image layouts** (:func:`fit_image_entries`, on the writer's list of sampled frames):
  training images are removed (never a tracklet's last one) or added (frames of the same
  training tracklets that were not sampled); queries are demoted to the gallery (never an
  identity's last query) or gallery images promoted to queries (only when every query of the
  identity keeps a gallery image from another camera); gallery images of test identities are
  removed (never a tracklet's last gallery image) or added (unsampled frames of test tracklets).
  Distractors (pid 0) and junk (pid -1, dropped by the readers, not counted) are left alone.
* **Video layouts** (:func:`fit_world_tracklets`, on the world): a group of tracklets (the
  training ones, or everything the test folders show) grows by splitting a tracklet in two, as a
  tracker that loses a person for a few frames does (the pieces keep the identity, camera and
  time order, so no identity is ever in two places at once), and shrinks by dropping a second
  tracklet of the same camera visit (never an identity's only tracklet in a camera, unless the
  identity keeps two other cameras).  Tracklet ids are then renumbered in order.  MARS's query
  rows are matched by :func:`fit_mars_queries`.

Worlds without ``exact_counts`` never reach this module, so their output is unchanged.
"""
from __future__ import annotations

import dataclasses
from collections import Counter, defaultdict
from typing import Callable, Dict, List, Sequence, Tuple

from .seeding import rng as make_rng
from .world import Tracklet, World

Entry = Tuple[str, Tracklet, int, int]  # (split, tracklet, frame index, pid)


class CountMatchError(ValueError):
    """The targets cannot be reached from this world without breaking the layout's rules."""


def _fail(what: str, have: int, want: int, why: str) -> CountMatchError:
    return CountMatchError(f"exact_counts: cannot bring the {what} from {have} to {want} ({why}); "
                           "change the preset's simulation parameters or exact_counts")


# ---------------------------------------------------------------------------------------------
# image layouts


def _is_test(world: World, trk: Tracklet) -> bool:
    return trk.kind == "normal" and trk.uid >= 0 and world.identities[trk.uid].split == "test"


def fit_image_entries(world: World, raw: Sequence[Entry], targets: Sequence[int]) -> List[Entry]:
    """Return ``raw`` with exactly ``targets`` = (train, query, gallery) images as a reader counts
    them (pid -1 is not counted).  The kept entries stay in their order; added frames join their
    tracklet's entries in frame order."""
    train_t, query_t, gallery_t = (int(t) for t in targets)
    seed = world.seed
    entries: List[list] = [list(e) for e in raw]
    alive = [True] * len(entries)
    used = {(e[1].tid, e[2]) for e in entries}

    def add(split: str, trk: Tracklet, i: int, pid: int) -> None:
        entries.append([split, trk, i, pid])
        alive.append(True)
        used.add((trk.tid, i))

    def unused_frames(trks: List[Tracklet]) -> List[Tuple[Tracklet, int]]:
        return [(t, i) for t in trks for i in range(t.length) if (t.tid, i) not in used]

    # --- training images ------------------------------------------------------------------
    train = [k for k, e in enumerate(entries) if e[0] == "train"]
    diff = len(train) - train_t
    if diff > 0:
        per_trk = Counter(entries[k][1].tid for k in train)
        for k in make_rng(seed, "fit", "train", "remove").permutation(train).tolist():
            if diff == 0:
                break
            tid = entries[k][1].tid
            if per_trk[tid] > 1:
                per_trk[tid] -= 1
                alive[k] = False
                diff -= 1
        if diff:
            raise _fail("training images", len(train), train_t, "every tracklet keeps one image")
    elif diff < 0:
        trks = sorted({entries[k][1].tid: entries[k][1] for k in train}.values(), key=lambda t: t.tid)
        cands = unused_frames(trks)
        if len(cands) < -diff:
            raise _fail("training images", len(train), train_t, "not enough unsampled frames")
        for c in sorted(make_rng(seed, "fit", "train", "add").choice(len(cands), -diff, replace=False)):
            trk, i = cands[int(c)]
            add("train", trk, i, trk.uid + 1)

    # --- queries --------------------------------------------------------------------------
    query = [k for k, e in enumerate(entries) if alive[k] and e[0] == "query"]
    diff = len(query) - query_t
    if diff > 0:
        per_pid = Counter(entries[k][3] for k in query)
        for k in make_rng(seed, "fit", "query", "demote").permutation(query).tolist():
            if diff == 0:
                break
            pid = entries[k][3]
            if per_pid[pid] > 1:  # every test identity keeps a query
                per_pid[pid] -= 1
                entries[k][0] = "gallery"
                diff -= 1
        if diff:
            raise _fail("queries", len(query), query_t, "every test identity keeps one query")
    elif diff < 0:
        qcams: Dict[int, List[int]] = defaultdict(list)
        gcams: Dict[int, Counter] = defaultdict(Counter)
        cands = []
        for k, e in enumerate(entries):
            if not alive[k]:
                continue
            if e[0] == "query":
                qcams[e[3]].append(e[1].cam)
            elif e[0] == "gallery" and _is_test(world, e[1]):
                gcams[e[3]][e[1].cam] += 1
                cands.append(k)
        for k in make_rng(seed, "fit", "query", "promote").permutation(cands).tolist() if cands else []:
            if diff == 0:
                break
            pid, cam = entries[k][3], entries[k][1].cam
            g = gcams[pid]
            g[cam] -= 1
            if all(any(n > 0 and c != qc for c, n in g.items()) for qc in qcams[pid] + [cam]):
                entries[k][0] = "query"
                qcams[pid].append(cam)
                diff += 1
            else:
                g[cam] += 1
        if diff:
            raise _fail("queries", len(query), query_t,
                        "every query must keep a gallery image from another camera")

    # --- gallery (pid -1 is junk: not counted) ----------------------------------------------
    gallery = [k for k, e in enumerate(entries) if alive[k] and e[0] == "gallery" and e[3] != -1]
    diff = len(gallery) - gallery_t
    if diff > 0:
        test_gal = [k for k in gallery if _is_test(world, entries[k][1])]
        per_trk = Counter(entries[k][1].tid for k in test_gal)
        for k in make_rng(seed, "fit", "gallery", "remove").permutation(test_gal).tolist():
            if diff == 0:
                break
            tid = entries[k][1].tid
            if per_trk[tid] > 1:
                per_trk[tid] -= 1
                alive[k] = False
                diff -= 1
        if diff:
            raise _fail("gallery images", len(gallery), gallery_t,
                        "every test tracklet keeps one gallery image")
    elif diff < 0:
        trks = sorted({e[1].tid: e[1] for k, e in enumerate(entries)
                       if alive[k] and e[0] in ("query", "gallery") and _is_test(world, e[1])}.values(),
                      key=lambda t: t.tid)
        cands = unused_frames(trks)
        if len(cands) < -diff:
            raise _fail("gallery images", len(gallery), gallery_t, "not enough unsampled frames")
        for c in sorted(make_rng(seed, "fit", "gallery", "add").choice(len(cands), -diff, replace=False)):
            trk, i = cands[int(c)]
            add("gallery", trk, i, trk.uid + 1)

    # kept entries in their order; an added frame joins the first entry of its (split, tracklet)
    first: Dict[Tuple[str, int], int] = {}
    for k, e in enumerate(entries):
        if alive[k]:
            first.setdefault((e[0], e[1].tid), k)
    order = sorted((k for k in range(len(entries)) if alive[k]),
                   key=lambda k: (first[(entries[k][0], entries[k][1].tid)], entries[k][2]))
    return [tuple(entries[k]) for k in order]  # type: ignore[misc]


# ---------------------------------------------------------------------------------------------
# video layouts


def _split_piece_min(world: World) -> int:
    return max(2, world.cfg.tracklet_len[0] // 2)


def fit_world_tracklets(world: World, groups: Sequence[Tuple[str, Callable[[Tracklet], bool], int]]
                        ) -> World:
    """A world whose tracklet groups have exactly the target sizes.  ``groups`` lists
    ``(name, member(tracklet) -> bool, target)``; the groups must be disjoint."""
    seed = world.seed
    tracks: List[Tracklet] = list(world.tracklets)
    removed = [False] * len(tracks)
    for name, member, target in groups:
        idx = [k for k, t in enumerate(tracks) if not removed[k] and member(t)]
        diff = len(idx) - int(target)
        if diff > 0:
            pair = Counter((tracks[k].uid, tracks[k].cam) for k in idx)
            cams: Dict[int, set] = defaultdict(set)
            for k in idx:
                cams[tracks[k].uid].add(tracks[k].cam)
            order = make_rng(seed, "fit", name, "drop").permutation(idx).tolist()
            for strict in (True, False):
                for k in order:
                    if diff == 0:
                        break
                    if removed[k]:
                        continue
                    t = tracks[k]
                    key = (t.uid, t.cam)
                    if t.uid >= 0 and pair[key] == 1 and (strict or len(cams[t.uid]) <= 2):
                        continue  # keep every identity's camera visits (or at least two cameras)
                    pair[key] -= 1
                    if pair[key] == 0:
                        cams[t.uid].discard(t.cam)
                    removed[k] = True
                    diff -= 1
            if diff:
                raise _fail(f"{name} tracklets", len(idx), target,
                            "identities keep their tracklets in at least two cameras")
        elif diff < 0:
            m = _split_piece_min(world)
            r = make_rng(seed, "fit", name, "split")
            pool = [k for k in idx if tracks[k].length >= 2 * m + 1]
            while diff < 0:
                if not pool:
                    raise _fail(f"{name} tracklets", len(idx), target,
                                f"no tracklet left with {2 * m + 1}+ frames to split")
                j = int(r.integers(len(pool)))
                k = pool[j]
                t = tracks[k]
                gap = int(r.integers(1, min(3, t.length - 2 * m) + 1))  # frames the tracker lost
                cut = int(r.integers(m, t.length - m - gap + 1))
                head = dataclasses.replace(t, length=cut)
                tail = dataclasses.replace(t, tid=len(tracks), start=t.frame(cut + gap),
                                           length=t.length - cut - gap)
                tracks[k] = head
                tracks.append(tail)
                removed.append(False)
                pool.pop(j)
                pool += [x for x in (k, len(tracks) - 1) if tracks[x].length >= 2 * m + 1]
                diff += 1
    # junk fragments follow their track; renumber the tracklet ids in order
    gone = {tracks[k].tid for k in range(len(tracks)) if removed[k]}
    keep = [t for k, t in enumerate(tracks) if not removed[k] and not (t.kind == "junk" and t.parent in gone)]
    new_id = {t.tid: n for n, t in enumerate(keep)}
    out = tuple(dataclasses.replace(t, tid=new_id[t.tid], parent=new_id.get(t.parent, -1)
                                    if t.parent >= 0 else -1) for t in keep)
    return dataclasses.replace(world, tracklets=out)


def fit_mars_queries(world: World, test_rows: Sequence[Tuple[str, Tracklet, int]],
                     qidx: Sequence[int], target: int) -> List[int]:
    """MARS ``query_IDX`` (1-based rows of ``test_rows``) with exactly ``target`` rows: drop
    queries of identities that keep another one, or add gallery rows of test identities as long
    as every query keeps a gallery row of its identity from another camera."""
    chosen = sorted(int(q) for q in qidx)
    diff = len(chosen) - int(target)
    pid_of = {row + 1: pid for row, (_, _, pid) in enumerate(test_rows)}
    cam_of = {row + 1: trk.cam for row, (_, trk, _) in enumerate(test_rows)}
    if diff > 0:
        per_pid = Counter(pid_of[q] for q in chosen)
        drop = set()
        for q in make_rng(world.seed, "fit", "mquery", "drop").permutation(chosen).tolist():
            if diff == 0:
                break
            if per_pid[pid_of[q]] > 1:
                per_pid[pid_of[q]] -= 1
                drop.add(q)
                diff -= 1
        if diff:
            raise _fail("MARS queries", len(chosen), target, "every test identity keeps one query")
        chosen = [q for q in chosen if q not in drop]
    elif diff < 0:
        qset = set(chosen)
        qcams: Dict[int, List[int]] = defaultdict(list)
        gcams: Dict[int, Counter] = defaultdict(Counter)
        for row in sorted(pid_of):
            pid = pid_of[row]
            if pid <= 0:
                continue
            if row in qset:
                qcams[pid].append(cam_of[row])
            else:
                gcams[pid][cam_of[row]] += 1
        cands = [row for row in sorted(pid_of) if pid_of[row] > 0 and row not in qset]
        for row in make_rng(world.seed, "fit", "mquery", "add").permutation(cands).tolist() if cands else []:
            if diff == 0:
                break
            pid, cam = pid_of[row], cam_of[row]
            g = gcams[pid]
            g[cam] -= 1
            if all(any(n > 0 and c != qc for c, n in g.items()) for qc in qcams[pid] + [cam]):
                qcams[pid].append(cam)
                qset.add(row)
                diff += 1
            else:
                g[cam] += 1
        if diff:
            raise _fail("MARS queries", len(chosen), target,
                        "every query must keep a gallery tracklet from another camera")
        chosen = sorted(qset)
    return chosen
