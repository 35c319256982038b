"""The applications' inputs: folders, tracklets, list files, name rules, dataset splits, and the
command-line split of flags and KEY VALUE overrides; the console entry points."""
import argparse
import os

import pytest
from PIL import Image

from unreidusl.apps.common import AppError, add_model_arguments, collect_items, split_opts
from unreidusl.config import get_cfg

from helpers import ROOT, load_tool


def img(path):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    Image.new("RGB", (8, 16)).save(path)
    return str(path)


def test_folders_tracklets_lists_and_name_rules(tmp_path):
    a = [img(tmp_path / "cams" / "t1" / f"0007_c2s1_{100 + i:06d}_01.jpg") for i in (10, 2)]
    b = img(tmp_path / "cams" / "t2" / "0009_c1s1_000050_01.jpg")
    items = collect_items([str(tmp_path / "cams")])
    assert [s.frames for s in items] == [(a[1],), (a[0],), (b,)]            # natural order
    assert all(s.pid == -1 and s.camid == 0 and s.timestamps == () for s in items)
    parsed = collect_items([str(tmp_path / "cams")], name_rule="Market1501")
    assert [(s.pid, s.camid, s.timestamps) for s in parsed] == [(7, 1, (102.0,)), (7, 1, (110.0,)),
                                                                (9, 0, (50.0,))]
    tracks = collect_items([str(tmp_path / "cams")], tracklets=True, name_rule="Market1501")
    assert [(len(s.frames), s.pid, s.timestamps) for s in tracks] == [(2, 7, (102.0, 110.0)),
                                                                       (1, 9, (50.0,))]
    rx = collect_items([b], name_rule=r"(?P<pid>\d+)_c(?P<cam>\d)")
    assert (rx[0].pid, rx[0].camid) == (9, 0)
    lst = tmp_path / "cams" / "list.txt"
    lst.write_text("# path pid camid times\nt1 7 1 5,6\nt2/0009_c1s1_000050_01.jpg\n")
    cfg = get_cfg()
    items = collect_items([str(lst)], cfg)
    assert (len(items[0].frames), items[0].pid, items[0].camid, items[0].timestamps) == (2, 7, 1, (5.0, 6.0))
    assert (items[1].pid, items[1].camid) == (-1, 0)
    with pytest.raises(AppError, match="does not follow"):
        collect_items([img(tmp_path / "x" / "holiday.jpg")], name_rule="Market1501")
    with pytest.raises(AppError, match="neither"):
        collect_items([str(tmp_path / "missing")])
    with pytest.raises(AppError, match="split"):
        collect_items(["dataset:test"], cfg)


def test_dataset_split(tiny_root):
    cfg = get_cfg()
    cfg.merge_from_list(["DATASETS.ROOT", tiny_root, "DATASETS.TEST", "SyntheticMarket1501",
                         "DATASETS.TRAIN", "SyntheticMarket1501", "DATASETS.SYNTHETIC.PRESET", "tiny"])
    gallery = collect_items(["dataset:gallery"], cfg)
    named = collect_items(["dataset:SyntheticMarket1501:gallery"], cfg)
    assert gallery == named and all(s.timestamps for s in gallery)


def test_flags_after_config_overrides_are_parsed():
    p = argparse.ArgumentParser()
    p.add_argument("--topk", type=int, default=10)
    p.add_argument("--embed", action="store_true")
    add_model_arguments(p)
    args = p.parse_args(["--checkpoint", "w.pth", "TEST.METRIC", "cosine", "--topk", "3",
                         "MODEL.DEVICE", "cpu", "--embed"])
    split_opts(args, p)
    assert (args.topk, args.embed, args.checkpoint) == (3, True, "w.pth")
    assert args.opts == ["TEST.METRIC", "cosine", "MODEL.DEVICE", "cpu"]


def test_console_entry_points_are_the_tools():
    """setup.py's console scripts point at the package's main functions, which the tools/*.py
    scripts re-export (one implementation each)."""
    import importlib

    text = open(os.path.join(ROOT, "setup.py")).read()
    entries = dict(line.strip().strip('",').split(" = ") for line in text.splitlines()
                   if line.strip().startswith('"unreidusl-'))
    tools = {"unreidusl-train": "main", "unreidusl-search": "search", "unreidusl-discover": "discover",
             "unreidusl-export": "export", "unreidusl-make-synthetic": "make_synthetic"}
    assert set(entries) == set(tools)
    for name, target in entries.items():
        module, func = target.split(":")
        assert getattr(importlib.import_module(module), func) is load_tool(tools[name]).main, name
