"""Bad input stops with a message naming the culprit and the fix."""
import os
import shutil

import pytest

from unreidusl.data import CorruptImageError, DatasetFormatError, SampleDataset, build_dataset
from unreidusl.data.datasets import Market1501
from unreidusl.data.transforms import build_transforms
from unreidusl.engine import setup_cfg

from helpers import main, tiny_opts


def test_missing_dataset_directory_names_path_and_tree(tmp_path):
    with pytest.raises(FileNotFoundError) as e:
        Market1501(str(tmp_path))
    msg = str(e.value)
    assert str(tmp_path / "Market-1501-v15.09.15") in msg
    assert "bounding_box_train" in msg and "DATASETS.ROOT" in msg


def test_missing_synthetic_without_autogenerate_gives_command(tmp_path):
    cfg = setup_cfg("", ["DATASETS.ROOT", str(tmp_path), "DATASETS.TRAIN", "SyntheticMarket1501",
                         "DATASETS.SYNTHETIC.AUTO_GENERATE", "False"])
    with pytest.raises(FileNotFoundError, match="tools/make_synthetic.py"):
        build_dataset(cfg, "SyntheticMarket1501")


def test_unknown_config_key_on_command_line_exits_with_message(tmp_path, capsys):
    rc = main(["SOLVER.MAX_EPOCH", "3", "OUTPUT_DIR", str(tmp_path)])
    assert rc == 2
    err = capsys.readouterr().err
    assert "SOLVER.MAX_EPOCH" in err and "SOLVER.MAX_EPOCHS" in err
    assert not os.listdir(tmp_path)  # failed before any work


def _copy_market(tiny_root, tmp_path):
    src = os.path.join(tiny_root, "synthetic", "tiny-seed0", "Market-1501-v15.09.15")
    dst = tmp_path / "Market-1501-v15.09.15"
    shutil.copytree(src, dst)
    return dst


def test_corrupt_image_names_the_file(tiny_root, tmp_path):
    dst = _copy_market(tiny_root, tmp_path)
    ds = Market1501(str(tmp_path))
    bad = ds.train[0].frames[0]
    with open(bad, "wb") as f:
        f.write(b"this is not a jpeg")
    cfg = setup_cfg("", tiny_opts(tiny_root, tmp_path / "o"))
    data = SampleDataset(ds.train, build_transforms(cfg, is_train=False))
    with pytest.raises(CorruptImageError) as e:
        data[0]
    assert bad in str(e.value) and "DATASETS.SKIP_CORRUPT" in str(e.value)
    skipping = SampleDataset(ds.train, build_transforms(cfg, is_train=False), skip_corrupt=True)
    assert skipping[0] is None and skipping[1] is not None
    assert os.path.isdir(dst)


def test_unparseable_file_name_names_file_and_rule(tiny_root, tmp_path):
    dst = _copy_market(tiny_root, tmp_path)
    odd = dst / "query" / "holiday_photo.jpg"
    odd.write_bytes(b"")
    with pytest.raises(DatasetFormatError) as e:
        Market1501(str(tmp_path))
    assert str(odd) in str(e.value) and "0002_c1s1_000451_03.jpg" in str(e.value)


@pytest.mark.parametrize("name,folder,token", [
    ("Market1501", "Market-1501-v15.09.15", "bounding_box_train"),
    ("DukeMTMCreID", "DukeMTMC-reID", "0001_c2_f0046182.jpg"),
    ("MSMT17", "MSMT17_V1", "list_train.txt"),
    ("VeRi", "VeRi", "image_query"),
    ("MARS", "MARS", "tracks_train_info.mat"),
    ("DukeMTMCVideoReID", "DukeMTMC-VideoReID", "<pid>/<tracklet>"),
])
def test_every_reader_names_missing_folder_and_prints_tree(tmp_path, name, folder, token):
    cfg = setup_cfg("", ["DATASETS.ROOT", str(tmp_path), "DATASETS.CACHE_DIR", str(tmp_path / "c")])
    with pytest.raises(FileNotFoundError) as e:
        build_dataset(cfg, name)
    msg = str(e.value)
    assert str(tmp_path / folder) in msg and token in msg and "DATASETS.ROOT" in msg


def test_missing_split_folder_is_named(tiny_root, tmp_path):
    dst = _copy_market(tiny_root, tmp_path)
    shutil.rmtree(dst / "query")
    with pytest.raises(FileNotFoundError) as e:
        Market1501(str(tmp_path))
    assert str(dst / "query") in str(e.value) and "bounding_box_test" in str(e.value)


@pytest.mark.parametrize("reader,folder,bad,rule", [
    ("DukeMTMCreID", "bounding_box_test", "0001_cam2.jpg", "<pid>_c<camera>_f<frame>.jpg"),
    ("MSMT17", "query", "person.jpg", "<pid>_c<camera>_<frame>"),
    ("VeRi", "image_train", "0001_c001.jpg", "<vehicle id>_c<camera, 3 digits>"),
    ("Market1501", "bounding_box_train", "0001_c9s1_000001_01.jpg", "camera id in 1..6"),
])
def test_unparseable_names_in_every_image_reader(tiny_root, tmp_path, reader, folder, bad, rule):
    from unreidusl.data.synthetic import make_synthetic

    fmt = {"DukeMTMCreID": "dukemtmcreid", "MSMT17": "msmt17", "VeRi": "veri",
           "Market1501": "market1501"}[reader]
    path = make_synthetic(root=tmp_path, fmt=fmt, seed=0, preset="tiny",
                          num_train_ids=3, num_test_ids=3, num_extra_ids=0)
    if reader == "VeRi":  # the name list decides the split: add the odd name to it
        with open(path / "name_train.txt", "a") as f:
            f.write(bad + "\n")
    odd = path / folder / bad
    odd.write_bytes(b"")
    cfg = setup_cfg("", ["DATASETS.ROOT", str(tmp_path)])
    with pytest.raises(DatasetFormatError) as e:
        build_dataset(cfg, reader)
    assert str(odd) in str(e.value) and rule in str(e.value)


def test_list_dataset_missing_list_file_is_named(tmp_path):
    cfg = setup_cfg("", ["DATASETS.ROOT", str(tmp_path), "DATASETS.LIST.TRAIN", "train.txt"])
    with pytest.raises(FileNotFoundError) as e:
        build_dataset(cfg, "ListDataset")
    assert str(tmp_path / "train.txt") in str(e.value) and "<pid> <camid>" in str(e.value)


def test_main_reports_a_missing_dataset_in_one_line(tmp_path, capsys):
    rc = main(["DATASETS.ROOT", str(tmp_path / "nowhere"), "OUTPUT_DIR", str(tmp_path / "out"),
               "MODEL.BACKBONE.DEPTH", "18"])
    assert rc == 1
    out = capsys.readouterr().out
    assert "FileNotFoundError" in out and str(tmp_path / "nowhere") in out and "Traceback" not in out
    assert "Market-1501-v15.09.15" in (tmp_path / "out" / "log.txt").read_text()
