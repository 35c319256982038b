"""Every reader on its synthetic twin reproduces the generator's ground truth exactly; MARS on
official-size info/ files; dense mode; split cache; list-file and plugin datasets."""
import json
import logging
import os
import shutil
from collections import Counter

import numpy as np
import pytest
from scipy.io import savemat

from unreidusl.data import DATASET_REGISTRY, DatasetFormatError, Sample, build_dataset, dense_split
from unreidusl.data.datasets import (MARS, MSMT17, DukeMTMCreID, DukeMTMCVideoReID, Market1501,
                                     VeRi)
from unreidusl.data.synthetic import DATASET_DIRNAMES, make_synthetic
from unreidusl.engine import setup_cfg

from helpers import ROOT

READERS = {"market1501": Market1501, "dukemtmcreid": DukeMTMCreID, "msmt17": MSMT17, "veri": VeRi,
           "mars": MARS, "dukemtmc-videoreid": DukeMTMCVideoReID}
TWINS = {"market1501": "SyntheticMarket1501", "dukemtmcreid": "SyntheticDukeMTMCreID",
         "msmt17": "SyntheticMSMT17", "veri": "SyntheticVeRi", "mars": "SyntheticMARS",
         "dukemtmc-videoreid": "SyntheticDukeMTMCVideoReID"}
VIDEO = ("mars", "dukemtmc-videoreid")


@pytest.fixture(scope="module")
def twins(tmp_path_factory):
    """DATASETS.ROOT with all six tiny twins under synthetic/tiny-seed0/."""
    root = tmp_path_factory.mktemp("datasets")
    base = root / "synthetic" / "tiny-seed0"
    for fmt in READERS:
        make_synthetic(root=base, fmt=fmt, seed=0, preset="tiny")
    return root


def cfg_for(root, tmp_path, **opts):
    flat = ["DATASETS.ROOT", str(root), "DATASETS.SYNTHETIC.PRESET", "tiny",
            "DATASETS.CACHE_DIR", str(tmp_path / "cache")]
    for k, v in opts.items():
        flat += [k, str(v)]
    return setup_cfg("", flat)


def expected_splits(folder):
    """Ground truth from synthetic_meta.json, as the readers must return it (train relabelled)."""
    meta = json.loads((folder / "synthetic_meta.json").read_text())
    fmt = meta["format"]
    out = {"train": [], "query": [], "gallery": []}
    for rec in meta["tracklets"]:
        if rec["pid"] == -1:  # junk: dropped everywhere
            continue
        files = [str(folder / f) for f in rec["files"]]
        ts = [float(t) for t in rec["frames"]]
        if fmt == "mars":
            ts = []  # MARS names carry no time
        if fmt in VIDEO:
            out[rec["split"]].append(Sample(tuple(files), rec["pid"], rec["camera"] - 1, tuple(ts)))
        else:
            out[rec["split"]] += [Sample((f,), rec["pid"], rec["camera"] - 1, (t,))
                                  for f, t in zip(files, ts)]
    labels = {p: i for i, p in enumerate(sorted({s.pid for s in out["train"]}))}
    out["train"] = [s._replace(pid=labels[s.pid]) for s in out["train"]]
    return {k: sorted(v) for k, v in out.items()}, meta


@pytest.mark.parametrize("fmt", list(READERS))
def test_reader_reproduces_ground_truth(twins, tmp_path, fmt):
    folder = twins / "synthetic" / "tiny-seed0" / DATASET_DIRNAMES[fmt]
    cfg = cfg_for(twins, tmp_path)
    ds = build_dataset(cfg, TWINS[fmt])
    assert isinstance(ds, READERS[fmt])
    truth, meta = expected_splits(folder)
    for split in ("train", "query", "gallery"):
        got = getattr(ds, split)
        assert sorted(got) == truth[split], (fmt, split)
        assert len(set(got)) == len(got)
    # frame order inside tracklets is the generator's (F index / name-list order)
    if fmt in VIDEO:
        assert ds.is_video and all(len(s.frames) >= 1 for s in ds.train)
    else:
        assert not ds.is_video
    assert ds.has_train_labels
    # junk never appears; distractors (pid 0) stay in the gallery where the layout encodes them
    junk = sum(1 for r in meta["tracklets"] if r["pid"] == -1)
    distractors = Counter(r["split"] for r in meta["tracklets"] if r["pid"] == 0)
    assert all(s.pid != -1 for s in ds.query + ds.gallery)
    if fmt in ("market1501", "mars"):
        assert junk > 0 and distractors["gallery"] > 0
        assert sum(1 for s in ds.gallery if s.pid == 0) == sum(
            len(r["files"]) if fmt == "market1501" else 1
            for r in meta["tracklets"] if r["pid"] == 0)
        assert 0 not in {s.pid for s in ds.query}


def test_statistics_table_is_logged_at_load_time(twins, tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="unreidusl")
    ds = build_dataset(cfg_for(twins, tmp_path), "SyntheticMARS")
    text = caplog.text
    for word in ("split", "ids", "samples", "cameras", "frames", "train", "query", "gallery"):
        assert word in text
    rows = {r[0]: r for r in ds.statistics()}
    assert rows["train"][2] == len(ds.train)
    assert rows["gallery"][4] == sum(len(s.frames) for s in ds.gallery)


# ------------------------------------------------------------------------------------- MSMT17
def _msmt_original(src, dst, train_dir, test_dir):
    """Rewrite the Market-style twin into the original release layout (pid folders + lists)."""
    lists = {"train": [], "val": [], "query": [], "gallery": []}
    truth = {"train": [], "query": [], "gallery": []}
    for split, folder, image_dir in (("train", "bounding_box_train", train_dir),
                                     ("query", "query", test_dir),
                                     ("gallery", "bounding_box_test", test_dir)):
        for k, name in enumerate(sorted(os.listdir(src / folder))):
            pid, cam = int(name[:4]), int(name.split("_")[1][1:])
            new = f"{pid:04d}/{pid:04d}_{k:03d}_{cam:02d}_0303morning_{k:04d}_0.jpg"
            (dst / image_dir / f"{pid:04d}").mkdir(parents=True, exist_ok=True)
            shutil.copy(src / folder / name, dst / image_dir / new)
            key = "val" if split == "train" and k % 5 == 0 else split
            lists[key].append(f"{new} {pid}")
            truth[split].append(Sample((str(dst / image_dir / new),), pid, cam - 1, ()))
    for key, lines in lists.items():
        (dst / f"list_{key}.txt").write_text("\n".join(lines) + "\n")
    return truth


@pytest.mark.parametrize("version,dirs", [("MSMT17_V1", ("train", "test")),
                                          ("MSMT17_V2", ("mask_train_v2", "mask_test_v2"))])
def test_msmt17_original_layouts_with_list_files(twins, tmp_path, version, dirs):
    src = twins / "synthetic" / "tiny-seed0" / "MSMT17_V1"
    truth = _msmt_original(src, tmp_path / version, *dirs)
    ds = MSMT17(str(tmp_path))
    assert ds.layout == "original" and ds.dataset_dir == version
    assert sorted(ds.query) == sorted(truth["query"])
    assert sorted(ds.gallery) == sorted(truth["gallery"])
    labels = {p: i for i, p in enumerate(sorted({s.pid for s in truth["train"]}))}
    assert sorted(ds.train) == sorted(s._replace(pid=labels[s.pid]) for s in truth["train"])
    # train = list_train + list_val
    assert len(ds.train) == len(truth["train"])


def test_msmt17_bad_list_line_names_file_line_and_rule(twins, tmp_path):
    src = twins / "synthetic" / "tiny-seed0" / "MSMT17_V1"
    _msmt_original(src, tmp_path / "MSMT17_V1", "train", "test")
    lst = tmp_path / "MSMT17_V1" / "list_query.txt"
    lines = lst.read_text().splitlines()
    lines[2] = lines[2].split()[0] + " notanumber"
    lst.write_text("\n".join(lines) + "\n")
    with pytest.raises(DatasetFormatError) as e:
        MSMT17(str(tmp_path))
    assert f"{lst}:3" in str(e.value) and "<pid>_<index>_<camera>" in str(e.value)


# --------------------------------------------------------------------------------------- VeRi
def test_veri_uses_name_lists(twins, tmp_path):
    src = twins / "synthetic" / "tiny-seed0" / "VeRi"
    shutil.copytree(src, tmp_path / "VeRi")
    full = VeRi(str(tmp_path))
    names = (tmp_path / "VeRi" / "name_query.txt").read_text().split()
    (tmp_path / "VeRi" / "name_query.txt").write_text("\n".join(names[1:]) + "\n")
    fewer = VeRi(str(tmp_path))
    assert len(fewer.query) == len(full.query) - 1
    assert all(not s.frames[0].endswith(names[0]) for s in fewer.query)
    (tmp_path / "VeRi" / "name_query.txt").write_text("\n".join(names + ["0999_c001_00000001_0.jpg"]))
    with pytest.raises(DatasetFormatError) as e:
        VeRi(str(tmp_path))
    assert "name_query.txt" in str(e.value) and "0999_c001_00000001_0.jpg" in str(e.value)


# --------------------------------------------------------------------------------------- MARS
def _name(pid, cam, t, f):
    p4 = "00-1" if pid < 0 else f"{pid:04d}"
    return f"{p4}C{cam}T{t:04d}F{f:03d}.jpg"


def write_mars_info(folder, train_rows, test_rows, query_idx, frames_per_row=2, info="info"):
    """MARS info/ files from rows (pid, cam); returns nothing.  No images are written."""
    os.makedirs(os.path.join(folder, info), exist_ok=True)
    for split, rows in (("train", train_rows), ("test", test_rows)):
        names, table, counter = [], [], Counter()
        for pid, cam in rows:
            counter[(pid, cam)] += 1
            t = counter[(pid, cam)]
            start = len(names) + 1
            names += [_name(pid, cam, t, f) for f in range(1, frames_per_row + 1)]
            table.append([start, len(names), pid, cam])
        with open(os.path.join(folder, info, f"{split}_name.txt"), "w") as fh:
            fh.write("\n".join(names) + "\n")
        savemat(os.path.join(folder, info, f"tracks_{split}_info.mat"),
                {f"track_{split}_info": np.asarray(table, dtype=np.float64)})
    savemat(os.path.join(folder, "info", "query_IDX.mat"),
            {"query_IDX": np.asarray(query_idx, dtype=np.float64).reshape(1, -1)})


def official_mars_rows():
    """Rows with the published MARS counts: 8,298 train tracklets of 625 ids; 12,180 test rows
    = 1,980 query + 9,330 gallery + 870 junk."""
    train = [(1 + 2 * (k % 625), 1 + k % 6) for k in range(8298)]
    test = [(-1, 1 + k % 6) for k in range(870)]
    test += [(0, 1 + k % 6) for k in range(1500)]
    ids = [2 + 2 * i for i in range(636)]
    test += [(ids[k % 636], 1 + (k // 636) % 6) for k in range(12180 - len(test))]
    first_id_row = 870 + 1500
    query = [first_id_row + 1 + 4 * k for k in range(1980)]  # 1-based
    return train, test, query


def test_mars_official_counts_from_info_files(tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="unreidusl")
    train, test, query = official_mars_rows()
    write_mars_info(tmp_path / "MARS", train, test, query)
    cfg = setup_cfg("", ["DATASETS.ROOT", str(tmp_path), "DATASETS.TRAIN", "MARS"])
    ds = build_dataset(cfg, "MARS")
    rows = {r[0]: r for r in ds.statistics()}
    assert rows["train"][1:3] == [625, 8298]
    assert rows["query"][2] == 1980 and rows["gallery"][2] == 9330
    assert rows["train"][3] == 6
    assert "8298" in caplog.text and "9330" in caplog.text and "1980" in caplog.text
    assert all(s.pid != -1 for s in ds.query + ds.gallery)
    assert sum(1 for s in ds.gallery if s.pid == 0) == 1500
    # 1-based inclusive indices: row 1 = names 1..2, the query keeps query_IDX order
    assert ds.train[0].frames == (str(tmp_path / "MARS" / "bbox_train" / "0001" / "0001C1T0001F001.jpg"),
                                  str(tmp_path / "MARS" / "bbox_train" / "0001" / "0001C1T0001F002.jpg"))
    assert ds.query[0].pid == test[query[0] - 1][0] and ds.query[0].camid == test[query[0] - 1][1] - 1


def test_mars_alternative_train_info_and_errors(tmp_path, caplog):
    train = [(1, 1), (1, 2), (3, 1), (-1, 2)]
    test = [(5, 1), (5, 2), (0, 3), (-1, 1)]
    write_mars_info(tmp_path / "MARS", train, test, [1], frames_per_row=3)
    write_mars_info(tmp_path / "MARS", train[:2], test, [1], frames_per_row=2, info="info_x2")
    cfg = setup_cfg("", ["DATASETS.ROOT", str(tmp_path), "DATASETS.MARS_INFO", "info_x2"])
    ds = MARS(str(tmp_path), cfg)
    assert len(ds.train) == 2 and all(len(s.frames) == 2 for s in ds.train)
    assert len(ds.query) == 1 and len(ds.gallery) == 2  # junk row dropped, distractor kept
    # a table row that leaves the name list names the file and the row
    bad = [[1, 3, 1, 1], [4, 99, 1, 2]]
    savemat(tmp_path / "MARS" / "info" / "tracks_train_info.mat",
            {"track_train_info": np.asarray(bad, dtype=np.float64)})
    with pytest.raises(DatasetFormatError) as e:
        MARS(str(tmp_path))
    assert "tracks_train_info.mat" in str(e.value) and "row 2" in str(e.value)
    # a table camera that disagrees with the names is reported, the table wins
    write_mars_info(tmp_path / "MARS", train, test, [1], frames_per_row=3)
    table = np.asarray([[1, 3, 1, 4], [4, 6, 1, 2], [7, 9, 3, 1], [10, 12, -1, 2]], dtype=np.float64)
    savemat(tmp_path / "MARS" / "info" / "tracks_train_info.mat", {"track_train_info": table})
    with caplog.at_level(logging.WARNING, logger="unreidusl"):
        ds = MARS(str(tmp_path))
    assert ds.train[0].camid == 3 and "disagree" in caplog.text and "0001C1T0001F001.jpg" in caplog.text
    # a frame of another camera inside a tracklet names the frame and the rule
    write_mars_info(tmp_path / "MARS", train, test, [1], frames_per_row=3)
    names_path = tmp_path / "MARS" / "info" / "train_name.txt"
    names = names_path.read_text().split()
    names[1] = names[1][:5] + "5" + names[1][6:]
    names_path.write_text("\n".join(names) + "\n")
    with pytest.raises(DatasetFormatError) as e:
        MARS(str(tmp_path))
    assert f"{names_path}:2" in str(e.value) and names[1] in str(e.value) and "camera" in str(e.value)
    # an unparseable name
    names[0] = "holiday.jpg"
    names[1] = names[2]
    names_path.write_text("\n".join(names) + "\n")
    with pytest.raises(DatasetFormatError) as e:
        MARS(str(tmp_path))
    assert "holiday.jpg" in str(e.value) and "PPPPCcTttttFfff.jpg" in str(e.value)


# ------------------------------------------------------------------------- DukeMTMC-VideoReID
def test_dense_split_chunk_counts_and_ranges():
    frames = tuple(f"f{i}" for i in range(10))
    ts = tuple(float(i) for i in range(10))
    s = Sample(frames, 3, 1, ts)
    for step, expected in ((3, [(0, 3), (3, 6), (6, 10)]), (4, [(0, 4), (4, 10)]),
                           (5, [(0, 5), (5, 10)]), (10, [(0, 10)]), (11, [(0, 10)]), (1, None)):
        chunks = dense_split([s], step)
        if expected is None:
            expected = [(i, i + 1) for i in range(10)]
        assert [(c.frames[0], c.frames[-1]) for c in chunks] == [(f"f{a}", f"f{b - 1}") for a, b in expected]
        assert all(c.timestamps == ts[a:b] and c.pid == 3 and c.camid == 1
                   for c, (a, b) in zip(chunks, expected))
        assert sum(len(c.frames) for c in chunks) == 10
        assert all(step <= len(c.frames) <= 2 * step - 1 for c in chunks) or len(chunks) == 1


def test_dukevideo_dense_mode(twins, tmp_path):
    plain = build_dataset(cfg_for(twins, tmp_path), "SyntheticDukeMTMCVideoReID")
    step = 4
    dense = build_dataset(cfg_for(twins, tmp_path, **{"DATASETS.MODE": "dense",
                                                      "DATASETS.DENSE_STEP": step}),
                          "SyntheticDukeMTMCVideoReID")
    expected = sum(max(len(s.frames) // step, 1) for s in plain.train)
    assert len(dense.train) == expected > len(plain.train)
    assert dense.query == plain.query and dense.gallery == plain.gallery
    it = iter(dense.train)
    for s in plain.train:  # chunks follow their tracklet, cover it exactly, in order
        m = max(len(s.frames) // step, 1)
        chunks = [next(it) for _ in range(m)]
        assert sum((c.frames for c in chunks), ()) == s.frames
        assert sum((c.timestamps for c in chunks), ()) == s.timestamps
        assert all(c.pid == s.pid and c.camid == s.camid for c in chunks)
        if m > 1:
            assert [len(c.frames) for c in chunks[:-1]] == [step] * (m - 1)
            assert step <= len(chunks[-1].frames) <= 2 * step - 1


def test_dukevideo_cache_outside_readonly_folder_and_invalidation(twins, tmp_path, monkeypatch):
    dst = tmp_path / "data" / "DukeMTMC-VideoReID"
    shutil.copytree(twins / "synthetic" / "tiny-seed0" / "DukeMTMC-VideoReID", dst)
    before = sorted(p for p in dst.rglob("*"))
    cfg = cfg_for(tmp_path / "data", tmp_path)
    first = DukeMTMCVideoReID(str(tmp_path / "data"), cfg)
    cache_files = list((tmp_path / "cache").iterdir())
    assert len(cache_files) == 1 and cache_files[0].name.startswith("DukeMTMCVideoReID-")
    assert sorted(p for p in dst.rglob("*")) == before  # nothing written into the dataset
    assert cache_files[0].read_text().count(os.path.realpath(str(dst))) == 1  # paths stored relative

    def boom(*a, **k):
        raise AssertionError("the cache was not used")

    with monkeypatch.context() as m:
        m.setattr(DukeMTMCVideoReID, "_read_tracklet", boom)
        again = DukeMTMCVideoReID(str(tmp_path / "data"), cfg)
    assert again.train == first.train and again.query == first.query and again.gallery == first.gallery
    # removing a frame changes the folder: the cache is re-read
    victim = first.gallery[0].frames[-1]
    os.remove(victim)
    changed = DukeMTMCVideoReID(str(tmp_path / "data"), cfg)
    assert victim not in {f for s in changed.gallery for f in s.frames}
    assert len(changed.gallery[0].frames) == len(first.gallery[0].frames) - 1
    # an unwritable cache folder only warns
    blocker = tmp_path / "not_a_dir"
    blocker.write_text("")
    cfg2 = cfg_for(tmp_path / "data", tmp_path, **{"DATASETS.CACHE_DIR": str(blocker / "sub")})
    ds = DukeMTMCVideoReID(str(tmp_path / "data"), cfg2)
    assert ds.query == changed.query


def test_dukevideo_bad_frame_name_and_duplicate_index(twins, tmp_path):
    dst = tmp_path / "DukeMTMC-VideoReID"
    shutil.copytree(twins / "synthetic" / "tiny-seed0" / "DukeMTMC-VideoReID", dst)
    cfg = setup_cfg("", ["DATASETS.USE_CACHE", "False"])
    tdir = sorted((dst / "query").iterdir())[0]
    tdir = sorted(tdir.iterdir())[0]
    odd = tdir / "snapshot.jpg"
    odd.write_bytes(b"")
    with pytest.raises(DatasetFormatError) as e:
        DukeMTMCVideoReID(str(tmp_path), cfg)
    assert str(odd) in str(e.value) and "_F<1-based index>_X" in str(e.value)
    odd.unlink()
    first = sorted(tdir.iterdir())[0].name
    dup = tdir / first.replace("_X", "_X9")
    dup.write_bytes(b"")
    with pytest.raises(DatasetFormatError) as e:
        DukeMTMCVideoReID(str(tmp_path), cfg)
    assert "unique" in str(e.value) and (str(dup) in str(e.value) or first in str(e.value))


# ------------------------------------------------------------------ list files and plugins
def test_list_dataset_images_tracklets_and_folders(tmp_path):
    for d in ("imgs", "tracks/a", "tracks/b"):
        (tmp_path / d).mkdir(parents=True)
    for n in ("1.jpg", "2.jpg", "3.jpg"):
        (tmp_path / "imgs" / n).write_bytes(b"")
    for n in ("f1.jpg", "f2.jpg", "f10.jpg"):
        (tmp_path / "tracks" / "b" / n).write_bytes(b"")
    (tmp_path / "train.txt").write_text(
        "# path pid cam\nimgs/1.jpg 7 1 100\nimgs/2.jpg 9 2\ntracks/b/ 7 3 5,6,7\n")
    (tmp_path / "query.txt").write_text("imgs/3.jpg\t4\t1\n")
    (tmp_path / "gallery.txt").write_text("imgs/1.jpg,imgs/2.jpg 4 2 1,2\nimgs/3.jpg -1 1\n")
    cfg = setup_cfg("", ["DATASETS.ROOT", str(tmp_path), "DATASETS.LIST.TRAIN", "train.txt",
                         "DATASETS.LIST.QUERY", "query.txt", "DATASETS.LIST.GALLERY", "gallery.txt",
                         "DATASETS.LIST.CAMID_BASE", "1"])
    ds = build_dataset(cfg, "ListDataset")
    p = lambda *a: str(tmp_path.joinpath(*a))  # noqa: E731
    assert ds.train == [Sample((p("imgs", "1.jpg"),), 0, 0, (100.0,)), Sample((p("imgs", "2.jpg"),), 1, 1, ()),
                        Sample((p("tracks", "b", "f1.jpg"), p("tracks", "b", "f2.jpg"),
                                p("tracks", "b", "f10.jpg")), 0, 2, (5.0, 6.0, 7.0))]
    assert ds.query == [Sample((p("imgs", "3.jpg"),), 4, 0, ())]
    assert ds.gallery == [Sample((p("imgs", "1.jpg"), p("imgs", "2.jpg")), 4, 1, (1.0, 2.0))]
    # unknown train identities are kept (unsupervised) and not relabelled
    (tmp_path / "train.txt").write_text("imgs/1.jpg -1 1\nimgs/2.jpg 3 1\n")
    ds = build_dataset(cfg, "ListDataset")
    assert [s.pid for s in ds.train] == [-1, 3] and not ds.has_train_labels
    # errors name the file, the line and the rule
    (tmp_path / "train.txt").write_text("imgs/1.jpg 7 1\nimgs/2.jpg seven 1\n")
    with pytest.raises(DatasetFormatError) as e:
        build_dataset(cfg, "ListDataset")
    assert f"{tmp_path / 'train.txt'}:2" in str(e.value) and "<pid> <camid>" in str(e.value)
    (tmp_path / "train.txt").write_text("tracks/b 7 1 1,2\n")
    with pytest.raises(DatasetFormatError, match="one numeric timestamp per frame"):
        build_dataset(cfg, "ListDataset")


def test_plugin_dataset_template_from_docs(tmp_path):
    plugin = os.path.join(ROOT, "docs", "examples", "my_dataset.py")
    base = tmp_path / "MyDataset"
    for split, names in (("train", ["0001_c1_0001.png", "0001_c2_0002.png", "0002_c1_0003.png"]),
                         ("query", ["0003_c1_0004.png"]),
                         ("gallery", ["0003_c2_0005.png", "0004_c1_0006.png"])):
        (base / split).mkdir(parents=True)
        for n in names:
            (base / split / n).write_bytes(b"")
    cfg = setup_cfg("", ["PLUGINS", f"['{plugin}']", "DATASETS.ROOT", str(tmp_path),
                         "DATASETS.TRAIN", "MyDataset", "DATASETS.TEST", "MyDataset"])
    assert "MyDataset" in DATASET_REGISTRY
    ds = build_dataset(cfg, "MyDataset")
    assert [s.pid for s in ds.train] == [0, 0, 1] and [s.camid for s in ds.train] == [0, 1, 0]
    assert ds.query[0].pid == 3 and ds.query[0].timestamps == (4.0,)
    assert len(ds.gallery) == 2
    (base / "query" / "oops.png").write_bytes(b"")
    with pytest.raises(DatasetFormatError) as e:
        build_dataset(cfg, "MyDataset")
    assert "oops.png" in str(e.value)
    shutil.rmtree(base)
    with pytest.raises(FileNotFoundError) as e:
        build_dataset(cfg, "MyDataset")
    assert "MyDataset/" in str(e.value) and "DATASETS.ROOT" in str(e.value)
