"""MARS, read from the official ``info/`` files unchanged.

``info/train_name.txt`` / ``test_name.txt``: one frame file name per line
(``PPPPCcTttttFfff.jpg``; junk frames ``00-1...``, distractors ``0000...``);
``tracks_{train,test}_info.mat``: tables ``track_{train,test}_info`` with rows
``[start, end, pid, camera]`` (1-based, inclusive rows of the name list);
``query_IDX.mat``: ``query_IDX``, 1-based rows of the test table.  Images live in
``bbox_{train,test}/<first 4 characters of the name>/<name>``.  No image is opened at load time.

Query = test rows at ``query_IDX``; gallery = the other test rows.  Rows with pid −1 (junk) are
dropped everywhere; pid 0 (distractors) stays in the gallery.  Cameras 1..6 are stored 0-based;
train pids are relabelled.  ``DATASETS.MARS_INFO`` names another folder for the *training*
annotation (e.g. ``info_x2``); the test annotation always comes from ``info/``.  MARS names
carry no time, so the timestamps are empty.
"""
import logging
import os
from typing import List, Sequence

import numpy as np

from .bases import DATASET_REGISTRY, DatasetFormatError, ReIDDataset, Sample, format_error

logger = logging.getLogger(__name__)

NAME_RULE = "'PPPPCcTttttFfff.jpg' of MARS (pid, camera, tracklet, frame)"
EXAMPLE = "0001C1T0001F001.jpg"


def load_mat_array(path: str, key: str) -> np.ndarray:
    """The array ``key`` of a MATLAB file (the only non-meta array when ``key`` is absent)."""
    from scipy.io import loadmat

    try:
        mat = loadmat(path)
    except Exception as e:  # noqa: BLE001 - scipy raises several types for bad files
        raise DatasetFormatError(f"{path}: cannot read the MATLAB file ({e})") from e
    if key not in mat:
        arrays = [k for k in mat if not k.startswith("__")]
        if len(arrays) != 1:
            raise DatasetFormatError(f"{path}: no variable '{key}' (found {arrays})")
        key = arrays[0]
    return np.asarray(mat[key])


def read_names(path: str) -> List[str]:
    with open(path, "r", encoding="utf-8") as f:
        return f.read().split()


@DATASET_REGISTRY.register()
class MARS(ReIDDataset):
    dataset_dir = "MARS"
    num_cameras = 6
    distractor_pid = 0
    expected_tree = (
        "MARS/\n"
        "  bbox_train/0001/0001C1T0001F001.jpg ...\n"
        "  bbox_test/0000/0000C1T0001F001.jpg ...   (00-1/ junk, 0000/ distractors)\n"
        "  info/train_name.txt  test_name.txt  tracks_train_info.mat  tracks_test_info.mat  "
        "query_IDX.mat"
    )

    def __init__(self, root: str, cfg=None) -> None:
        super().__init__(root, cfg)
        base = os.path.join(root, self.dataset_dir)
        self.dataset_path = base
        train_info = cfg.DATASETS.MARS_INFO if cfg is not None else "info"
        tr, te = os.path.join(base, train_info), os.path.join(base, "info")
        files = {
            "train_names": os.path.join(tr, "train_name.txt"),
            "train_table": os.path.join(tr, "tracks_train_info.mat"),
            "test_names": os.path.join(te, "test_name.txt"),
            "test_table": os.path.join(te, "tracks_test_info.mat"),
            "query_idx": os.path.join(te, "query_IDX.mat"),
        }
        self.check_before_run([base] + list(files.values()))
        strict_pid = train_info in ("info", "info_x2")
        train = self.read_split(files["train_names"], files["train_table"], "track_train_info",
                                os.path.join(base, "bbox_train"), strict_pid)
        test = self.read_split(files["test_names"], files["test_table"], "track_test_info",
                               os.path.join(base, "bbox_test"), True)
        raw = load_mat_array(files["query_idx"], "query_IDX").ravel()
        if raw.dtype.kind not in "iuf" or (raw.dtype.kind == "f" and not np.all(raw == np.round(raw))):
            raise DatasetFormatError(f"{files['query_idx']}: query_IDX must hold whole row numbers, got "
                                     f"{raw.dtype} values such as {raw[:3].tolist()}: restore the official "
                                     f"file")
        qidx = raw.astype(np.int64)
        dup = np.unique(qidx, return_counts=True)
        if (dup[1] > 1).any():
            raise DatasetFormatError(f"{files['query_idx']}: query_IDX lists rows "
                                     f"{dup[0][dup[1] > 1][:5].tolist()} more than once: restore the "
                                     f"official file")
        if len(qidx) == 0 or qidx.min() < 1 or qidx.max() > len(test):
            got = f"[{qidx.min()}, {qidx.max()}]" if len(qidx) else "nothing"
            raise DatasetFormatError(f"{files['query_idx']}: query_IDX must hold 1-based rows of "
                                     f"{files['test_table']} (1..{len(test)}), got {got}")
        is_query = np.zeros(len(test), dtype=bool)
        is_query[qidx - 1] = True
        junk_queries = sum(1 for q in qidx if test[q - 1].pid == -1)
        if junk_queries:
            logger.warning("%s: %d query rows are junk (pid -1) and are dropped", self.name, junk_queries)
        self.query = [test[q - 1] for q in qidx if test[q - 1].pid != -1]
        self.gallery = [s for s, q in zip(test, is_query) if not q and s.pid != -1]
        self.train = self.relabel([s for s in train if s.pid != -1])
        if not self.train:
            raise DatasetFormatError(f"{files['train_table']} has no training tracklet")
        self.apply_mode()

    def read_split(self, names_path: str, table_path: str, key: str, image_dir: str,
                   strict_pid: bool) -> List[Sample]:
        """All rows of a table (junk included), frames in name-list order."""
        names = read_names(names_path)
        table = load_mat_array(table_path, key)
        if table.ndim != 2 or table.shape[1] != 4:
            raise DatasetFormatError(f"{table_path}: '{key}' must be an N x 4 table [start, end, pid, "
                                     f"camera], got shape {table.shape}")
        table = table.astype(np.int64)
        start, end, pids, cams = table.T
        bad = np.flatnonzero((start < 1) | (end < start) | (end > len(names)))
        if len(bad):
            r = int(bad[0])
            raise DatasetFormatError(
                f"{table_path}: row {r + 1} {table[r].tolist()} does not index {names_path} "
                f"({len(names)} names; rows are 1-based inclusive [start, end, pid, camera])")
        bad = np.flatnonzero((cams < 1) | (cams > self.num_cameras))
        if len(bad):
            r = int(bad[0])
            raise DatasetFormatError(f"{table_path}: row {r + 1} {table[r].tolist()}: camera "
                                     f"{cams[r]} outside 1..{self.num_cameras}")
        self._check_names(names, names_path, start, end, pids, cams, strict_pid)
        prefix = image_dir + os.sep
        paths = [f"{prefix}{n[:4]}{os.sep}{n}" for n in names]
        return [Sample(tuple(paths[s - 1:e]), int(p), int(c) - 1, ())
                for s, e, p, c in zip(start.tolist(), end.tolist(), pids.tolist(), cams.tolist())]

    def _check_names(self, names: Sequence[str], names_path: str, start, end, pids, cams,
                     strict_pid: bool) -> None:
        """Every frame of a row shares its first frame's pid prefix (``strict_pid``) and camera
        character (an error otherwise, as AuxUSLReID asserts); a row's first name must follow the
        MARS rule.  A name whose pid / camera differs from the table's row is only reported."""
        mismatch = []
        for r, (s, e, p, c) in enumerate(zip(start.tolist(), end.tolist(), pids.tolist(),
                                             cams.tolist())):
            first = names[s - 1]
            if len(first) < 7 or first[4] != "C" or not first[5].isdigit():
                raise format_error(f"{names_path}:{s} ({first})", NAME_RULE, EXAMPLE)
            token = "-001" if first[:4] == "00-1" else first[:4]
            if int(first[5]) != c or (strict_pid and (not token.lstrip("-").isdigit() or int(token) != p)):
                mismatch.append(r)
            cam_char, pid4 = first[5], first[:4]
            for k in range(s, e):
                n = names[k]
                if n[5:6] != cam_char or (strict_pid and n[:4] != pid4):
                    raise format_error(f"{names_path}:{k + 1} ({n})", f"'all frames of a tracklet "
                                       f"share pid and camera' (table row {r + 1} starts with {first})",
                                       EXAMPLE)
        if mismatch:
            r = mismatch[0]
            logger.warning("%s: %d rows of the table disagree with their frame names on pid or camera "
                           "(e.g. row %d [pid %d, camera %d] vs %s); the table is used", self.name,
                           len(mismatch), r + 1, pids[r], cams[r], names[start[r] - 1])
