"""Tests of the deterministic synthetic re-ID world generator (preset "tiny", seconds each)."""
import json
import os
import re
from collections import defaultdict
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from unreidusl.data.synthetic import DATASET_DIRNAMES, FORMATS, make_synthetic
from unreidusl.data.synthetic.api import MARKER, META

from helpers import load_tool

MARKET_RE = re.compile(r"^(-1|\d{4})_c([1-6])s(\d)_(\d{6})_(\d{2})\.jpg$")
DUKEV_RE = re.compile(r"^(train|query|gallery)/(\d{4})/(\d{4})/(\d{4})_C([1-8])_F(\d{4})_X(\d{5})\.jpg$")
DUKE_RE = re.compile(r"^(\d{4})_c([1-8])_f(\d{7})\.jpg$")
MSMT_RE = re.compile(r"^(\d{4})_c(\d+)_(\d{7})_(\d{2})\.jpg$")
VERI_RE = re.compile(r"^(\d{4})_c(\d{3})_(\d{8})_(\d)\.jpg$")
MARS_RE = re.compile(r"^(\d{4}|00-1)C([1-6])T(\d{4})F(\d{3})\.jpg$")


def _files(folder: Path):
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())


def _meta(folder: Path):
    return json.loads((folder / META).read_text())


@pytest.fixture(scope="module")
def gen(tmp_path_factory):
    """Every format generated twice with seed 0 (1 and 2 rendering processes)."""
    a, b = tmp_path_factory.mktemp("a"), tmp_path_factory.mktemp("b")
    out = {}
    for fmt in FORMATS:
        out[fmt] = make_synthetic(root=a, fmt=fmt, seed=0, preset="tiny", workers=1)
        make_synthetic(root=b, fmt=fmt, seed=0, preset="tiny", workers=2)
    return {"a": a, "b": b, "paths": out}


def test_public_api(gen):
    assert {"market1501", "dukemtmc-videoreid"} <= set(FORMATS)
    assert DATASET_DIRNAMES["market1501"] == "Market-1501-v15.09.15"
    assert DATASET_DIRNAMES["dukemtmc-videoreid"] == "DukeMTMC-VideoReID"
    for fmt, path in gen["paths"].items():
        assert path == gen["a"] / DATASET_DIRNAMES[fmt]
        assert (path / MARKER).is_file() and (path / META).is_file()
    # no temporary siblings are left behind
    assert sorted(p.name for p in gen["a"].iterdir()) == sorted(DATASET_DIRNAMES.values())


def test_byte_identical_for_same_seed(gen):
    for fmt in FORMATS:
        pa, pb = gen["a"] / DATASET_DIRNAMES[fmt], gen["b"] / DATASET_DIRNAMES[fmt]
        fa, fb = _files(pa), _files(pb)
        assert fa == fb, fmt
        for rel in fa:
            assert (pa / rel).read_bytes() == (pb / rel).read_bytes(), f"{fmt}: {rel}"


def test_different_seed_differs(tmp_path, gen):
    p1 = make_synthetic(root=tmp_path, fmt="market1501", seed=1, preset="tiny")
    p0 = gen["paths"]["market1501"]
    f0, f1 = _files(p0), _files(p1)
    common = [r for r in set(f0) & set(f1) if r.endswith(".jpg")]
    assert f0 != f1 or any((p0 / r).read_bytes() != (p1 / r).read_bytes() for r in common)
    assert (p0 / META).read_bytes() != (p1 / META).read_bytes()


def _market_items(path: Path, regex=MARKET_RE):
    items = defaultdict(list)
    for split in ("bounding_box_train", "query", "bounding_box_test"):
        for p in sorted((path / split).iterdir()):
            m = regex.match(p.name)
            assert m, f"bad file name {split}/{p.name}"
            items[split].append((int(m.group(1)), int(m.group(2)), m, p))
    return items


def test_market_layout(gen):
    path = gen["paths"]["market1501"]
    it = _market_items(path)
    train = {pid for pid, *_ in it["bounding_box_train"]}
    query = {pid for pid, *_ in it["query"]}
    gallery = {pid for pid, *_ in it["bounding_box_test"] if pid > 0}
    assert min(train) > 0 and train.isdisjoint(query | gallery)
    assert query <= gallery
    gal_pids = [pid for pid, *_ in it["bounding_box_test"]]
    assert 0 in gal_pids and -1 in gal_pids  # distractors and junk, only in the gallery
    assert all(pid > 0 for pid, *_ in it["query"])
    # one query per (identity, camera), each with a cross-camera positive in the gallery
    qkeys = [(pid, cam) for pid, cam, *_ in it["query"]]
    assert len(qkeys) == len(set(qkeys))
    gkeys = {(pid, cam) for pid, cam, *_ in it["bounding_box_test"]}
    for pid, cam in qkeys:
        assert any(p == pid and c != cam for p, c in gkeys)
    # frame numbers in names are the world frames recorded in the metadata
    meta = _meta(path)
    fps = meta["time"]["fps"]
    for rec in meta["tracklets"]:
        assert rec["split"] in ("train", "query", "gallery")
        for rel, frame in zip(rec["files"], rec["frames"]):
            m = MARKET_RE.match(rel.split("/")[1])
            assert int(m.group(4)) == frame and int(m.group(2)) == rec["camera"]
            assert int(m.group(1)) == rec["pid"]
            assert rec["start_frame"] <= frame <= rec["end_frame"]
        assert rec["start_s"] == pytest.approx(rec["start_frame"] / fps, abs=1e-3)
    n_files = sum(len(r["files"]) for r in meta["tracklets"])
    assert n_files == sum(len(v) for v in it.values())


def test_duke_video_layout(gen):
    path = gen["paths"]["dukemtmc-videoreid"]
    meta = _meta(path)
    stride = meta["time"]["frame_stride"]
    tracks = defaultdict(list)
    for rel in _files(path):
        if rel.startswith(".") or rel == META:
            continue
        m = DUKEV_RE.match(rel)
        assert m, f"bad path {rel}"
        assert m.group(2) == m.group(4)  # pid folder == pid in the file name
        tracks[(m.group(1), int(m.group(2)), m.group(3))].append(
            (int(m.group(6)), int(m.group(7)), int(m.group(5))))
    ids = defaultdict(set)
    for (split, pid, _), frames in tracks.items():
        ids[split].add(pid)
        frames.sort()
        assert [f for f, _, _ in frames] == list(range(1, len(frames) + 1))  # F0001.. contiguous
        xs = [x for _, x, _ in frames]
        assert all(b > a for a, b in zip(xs, xs[1:]))  # X increasing
        assert len({c for _, _, c in frames}) == 1
    assert ids["train"].isdisjoint(ids["query"] | ids["gallery"])
    assert ids["query"] <= ids["gallery"]
    assert ids["gallery"] - ids["query"]  # gallery-only distractor identities
    qcount = defaultdict(int)
    for split, pid, _ in tracks:
        qcount[pid] += split == "query"
    assert all(qcount[p] == 1 for p in ids["query"])
    by_path = {}
    for rec in meta["tracklets"]:
        for i, (rel, frame) in enumerate(zip(rec["files"], rec["frames"])):
            m = DUKEV_RE.match(rel)
            assert int(m.group(7)) == frame == rec["start_frame"] + i * stride
            assert int(m.group(6)) == i + 1 and int(m.group(5)) == rec["camera"]
            by_path[rel] = rec
        assert rec["frames"][-1] == rec["end_frame"]
    # each query has a positive in another camera
    for rec in meta["tracklets"]:
        if rec["split"] == "query":
            assert any(r["split"] == "gallery" and r["pid"] == rec["pid"] and r["camera"] != rec["camera"]
                       for r in meta["tracklets"])


def test_world_time_consistency(gen):
    meta = _meta(gen["paths"]["dukemtmc-videoreid"])
    by_id = defaultdict(list)
    for rec in meta["tracklets"]:
        by_id[rec["identity"]].append((rec["start_frame"], rec["end_frame"]))
    for spans in by_id.values():  # one place at a time
        spans.sort()
        assert all(b[0] > a[1] for a, b in zip(spans, spans[1:]))
    # crowds: different identities overlap in time within a camera
    recs = meta["tracklets"]
    assert any(a["camera"] == b["camera"] and a["identity"] != b["identity"]
               and a["start_frame"] <= b["end_frame"] and b["start_frame"] <= a["end_frame"]
               for i, a in enumerate(recs) for b in recs[i + 1:])
    # transitions between cameras only along connected pairs
    neighbours = {c["camera"]: set(c["neighbours"]) for c in meta["cameras"]}
    seq = defaultdict(list)
    for rec in recs:
        seq[rec["identity"]].append((rec["start_frame"], rec["camera"]))
    for visits in seq.values():
        cams = [c for _, c in sorted(visits)]
        for a, b in zip(cams, cams[1:]):
            assert a == b or b in neighbours[a]


def test_mars_layout(gen):
    from scipy.io import loadmat

    path = gen["paths"]["mars"]
    tables = {}
    for split in ("train", "test"):
        names = (path / "info" / f"{split}_name.txt").read_text().split()
        table = loadmat(str(path / "info" / f"tracks_{split}_info.mat"))[f"track_{split}_info"]
        assert table.shape[1] == 4 and table.shape[0] > 0
        assert int(table[0, 0]) == 1 and int(table[-1, 1]) == len(names)
        for start, end, pid, cam in table.astype(int):
            frames = names[start - 1:end]
            assert len({n[:4] for n in frames}) == 1 and len({n[5] for n in frames}) == 1
            m = MARS_RE.match(frames[0])
            assert m and int(m.group(2)) == cam
            assert (pid == -1 and m.group(1) == "00-1") or int(m.group(1)) == pid
            assert [int(n[-7:-4]) for n in frames] == list(range(1, len(frames) + 1))
            for n in frames:
                assert (path / f"bbox_{split}" / n[:4] / n).is_file()
        tables[split] = table.astype(int)
    assert set(tables["train"][:, 2]) .isdisjoint({0, -1})
    assert {0, -1} <= set(tables["test"][:, 2])
    assert set(tables["train"][:, 2]).isdisjoint(set(tables["test"][:, 2]))
    q = loadmat(str(path / "info" / "query_IDX.mat"))["query_IDX"].ravel().astype(int)
    assert q.min() >= 1 and q.max() <= len(tables["test"])
    qrows = tables["test"][q - 1]
    assert (qrows[:, 2] > 0).all()
    assert len({(p, c) for p, c in qrows[:, 2:4]}) == len(q)  # at most one per id and camera
    gallery = np.delete(tables["test"], q - 1, axis=0)
    for _, _, pid, cam in qrows:  # every query keeps a cross-camera positive in the gallery
        assert ((gallery[:, 2] == pid) & (gallery[:, 3] != cam)).any()
    test_ids = set(tables["test"][:, 2]) - {0, -1}
    assert set(qrows[:, 2]) == test_ids


def test_other_image_layouts(gen):
    duke = _market_items(gen["paths"]["dukemtmcreid"], DUKE_RE)
    assert {p for p, *_ in duke["bounding_box_train"]}.isdisjoint({p for p, *_ in duke["query"]})
    assert {p for p, *_ in duke["query"]} < {p for p, *_ in duke["bounding_box_test"]}

    msmt = gen["paths"]["msmt17"]
    items = _market_items(msmt, MSMT_RE)
    for split, folder in (("train", "bounding_box_train"), ("query", "query"),
                          ("gallery", "bounding_box_test")):
        lines = (msmt / f"list_{split}.txt").read_text().splitlines()
        assert sorted(rel for rel in (ln.split()[0] for ln in lines)) == \
            sorted(f"{folder}/{p.name}" for *_, p in items[folder])
        for ln in lines:
            rel, pid = ln.split()
            assert int(MSMT_RE.match(rel.split("/")[1]).group(1)) == int(pid)

    veri = gen["paths"]["veri"]
    for split, folder in (("train", "image_train"), ("query", "image_query"), ("test", "image_test")):
        names = (veri / f"name_{split}.txt").read_text().split()
        assert names == sorted(p.name for p in (veri / folder).iterdir())
        for n in names:
            m = VERI_RE.match(n)
            assert m and 1 <= int(m.group(2)) <= 20 and 1 <= int(m.group(1)) <= 776
    q = (veri / "name_query.txt").read_text().split()
    assert set(q) <= set((veri / "name_test.txt").read_text().split())
    assert len((veri / "gt_image.txt").read_text().splitlines()) == len(q)


def test_images_decode_at_configured_size(gen):
    for fmt, path in gen["paths"].items():
        cfg = json.loads((path / MARKER).read_text())["config"]
        h, w = cfg["image_size"]
        jpgs = [r for r in _files(path) if r.endswith(".jpg")]
        assert jpgs
        for rel in jpgs[:: max(1, len(jpgs) // 25)]:
            with Image.open(path / rel) as im:
                assert im.format == "JPEG" and im.mode == "RGB" and im.size == (w, h)
                arr = np.asarray(im)
            assert arr.std() > 1.0  # not a blank image


def test_idempotent_and_parameter_checks(tmp_path):
    p = make_synthetic(root=tmp_path, fmt="market1501", seed=3, preset="tiny", num_cameras=3)
    marker = p / MARKER
    stamp = {rel: os.stat(p / rel).st_mtime_ns for rel in _files(p)}
    assert make_synthetic(root=tmp_path, fmt="market1501", seed=3, preset="tiny", num_cameras=3) == p
    assert {rel: os.stat(p / rel).st_mtime_ns for rel in _files(p)} == stamp  # nothing rewritten
    assert json.loads(marker.read_text())["overrides"] == {"num_cameras": 3}
    assert {int(n.split("_c")[1][0]) for n in os.listdir(p / "query")} <= {1, 2, 3}
    with pytest.raises(FileExistsError, match=re.escape(str(p))):
        make_synthetic(root=tmp_path, fmt="market1501", seed=4, preset="tiny", num_cameras=3)
    with pytest.raises(FileExistsError, match="num_cameras"):
        make_synthetic(root=tmp_path, fmt="market1501", seed=3, preset="tiny")
    p2 = make_synthetic(root=tmp_path, fmt="market1501", seed=4, preset="tiny", overwrite=True,
                        num_cameras=3)
    assert p2 == p and json.loads(marker.read_text())["seed"] == 4
    before = os.stat(marker).st_ino
    make_synthetic(root=tmp_path, fmt="market1501", seed=4, preset="tiny", overwrite=True, num_cameras=3)
    assert os.stat(marker).st_ino != before  # overwrite=True forces a regeneration
    assert sorted(x.name for x in tmp_path.iterdir()) == [p.name]
    with pytest.raises(TypeError, match="no_such_field"):
        make_synthetic(root=tmp_path, fmt="market1501", preset="tiny", no_such_field=1)
    with pytest.raises(ValueError, match="unknown synthetic format"):
        make_synthetic(root=tmp_path, fmt="nope", preset="tiny")


def test_incomplete_or_foreign_folder(tmp_path, monkeypatch):
    target = tmp_path / DATASET_DIRNAMES["market1501"]
    target.mkdir()
    (target / "bounding_box_train").mkdir()
    with pytest.raises(FileExistsError, match="not a complete synthetic dataset"):
        make_synthetic(root=tmp_path, fmt="market1501", preset="tiny")
    with pytest.raises(FileExistsError, match="refusing"):  # never deletes a foreign folder
        make_synthetic(root=tmp_path, fmt="market1501", preset="tiny", overwrite=True)
    (target / "bounding_box_train").rmdir()
    assert make_synthetic(root=tmp_path, fmt="market1501", preset="tiny", overwrite=True) == target

    # an interrupted generation leaves neither a dataset nor a temporary folder behind
    from unreidusl.data.synthetic import api

    def boom(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(api, "render_plan", boom)
    with pytest.raises(KeyboardInterrupt):
        make_synthetic(root=tmp_path / "other", fmt="market1501", preset="tiny")
    assert list((tmp_path / "other").iterdir()) == []


def test_color_histogram_baseline_and_cli(gen, tmp_path, capsys):
    from unreidusl.data.synthetic.baseline import image_layout_baseline

    m = image_layout_baseline(gen["paths"]["market1501"])
    assert 0.0 < m["mAP"] < 1.0 and m["num_queries"] > 0

    cli = load_tool("make_synthetic")
    args = ["--format", "market1501", "--root", str(tmp_path), "--preset", "tiny",
            "--set", "num_train_ids=5", "--set", "image_size=[64,32]"]
    assert cli.main(args) == 0
    out = capsys.readouterr().out
    assert DATASET_DIRNAMES["market1501"] in out and "train" in out and "query" in out
    with Image.open(next((tmp_path / DATASET_DIRNAMES["market1501"] / "query").iterdir())) as im:
        assert im.size == (32, 64)
    assert cli.main(args[:-4]) == 1  # different parameters without --overwrite
    assert "overwrite" in capsys.readouterr().err


def test_world_is_a_pure_function_of_the_seed():
    from unreidusl.data.synthetic import build_world, resolve_config
    from unreidusl.data.synthetic.world import world_summary

    cfg = resolve_config("tiny", "person", {"num_cameras": 5})
    w1, w2, w3 = build_world(7, cfg), build_world(7, cfg), build_world(8, cfg)
    assert w1.tracklets == w2.tracklets and w1.tracklets != w3.tracklets
    assert [i.attrs for i in w1.identities] == [i.attrs for i in w2.identities]
    assert {t.cam for t in w1.tracklets} <= set(range(1, 6))
    s = world_summary(w1)
    assert s["junk"] > 0 and s["false"] == 5 * cfg.false_dets_per_cam
    assert s["same_camera_overlapping_pairs"] > 0
    splits = [i.split for i in w1.identities]
    assert splits.count("train") == cfg.num_train_ids and splits.count("test") == cfg.num_test_ids
    with pytest.raises(ValueError):
        resolve_config("tiny", "person", {"tracklet_len": (5, 2)})


def _train_overlap_pairs(world):
    """Same-camera, time-overlapping pairs of tracklets of two different training identities."""
    trks = [t for t in world.tracklets if t.kind == "normal" and world.split_of(t) == "train"]
    return sum(a.cam == b.cam and a.uid != b.uid and a.start <= b.end and b.start <= a.end
               for i, a in enumerate(trks) for b in trks[i + 1:])


def test_video_layouts_have_crowded_cameras_and_image_layouts_keep_the_preset():
    from unreidusl.data.synthetic import build_world, resolve_config
    from unreidusl.data.synthetic.config import VIDEO_PRESETS

    image, video = resolve_config("small", "person"), resolve_config("small", "person", video=True)
    assert image == resolve_config("small", "person", {}) and image.frame_stride == 5  # Market world
    assert video.frame_stride == VIDEO_PRESETS["small"]["frame_stride"] == 15
    assert video.tracklet_len == image.tracklet_len and video.num_train_ids == image.num_train_ids
    assert resolve_config("small", "vehicle", video=True) == resolve_config("small", "vehicle")
    assert resolve_config("small", "person", {"frame_stride": 7}, video=True).frame_stride == 7
    n_image, n_video = _train_overlap_pairs(build_world(0, image)), _train_overlap_pairs(build_world(0, video))
    assert n_image < 300 and n_video > 1000  # ~2 concurrent other training identities per tracklet


def test_stale_cache_is_regenerated_only_when_asked(tmp_path):
    p = make_synthetic(root=tmp_path, fmt="dukemtmc-videoreid", seed=0, preset="tiny")
    marker = json.loads((p / MARKER).read_text())
    assert marker["config"]["frame_stride"] == 15
    old = dict(marker, format_version=marker["format_version"] - 1)
    (p / MARKER).write_text(json.dumps(old))                   # written by an older generator
    with pytest.raises(FileExistsError, match="format_version"):
        make_synthetic(root=tmp_path, fmt="dukemtmc-videoreid", seed=0, preset="tiny")
    assert make_synthetic(root=tmp_path, fmt="dukemtmc-videoreid", seed=0, preset="tiny",
                          refresh_stale=True) == p
    assert json.loads((p / MARKER).read_text()) == marker
    # a folder made with overrides, or for another seed, is the user's: never replaced silently
    make_synthetic(root=tmp_path / "o", fmt="market1501", seed=0, preset="tiny", num_cameras=3)
    with pytest.raises(FileExistsError, match="num_cameras"):
        make_synthetic(root=tmp_path / "o", fmt="market1501", seed=0, preset="tiny", refresh_stale=True)
    with pytest.raises(FileExistsError, match="seed"):
        make_synthetic(root=tmp_path, fmt="dukemtmc-videoreid", seed=1, preset="tiny", refresh_stale=True)
