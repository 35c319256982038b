"""Auxiliary information (TOC, SCP, STS) mined from a dataset's own metadata, its ``.npz`` files,
their alignment checks, and the opt-in loader of the original AuxUSLReID pickles.

Metadata per tracklet (:class:`TrackletMeta`, from ``Sample``): a key (the last three path
components of the first frame and the frame count, stable when the dataset folder moves), the
camera id, and the time span ``[start, end]`` = min / max of ``Sample.timestamps`` (world frames;
NaN when the layout has no time, e.g. MARS).

* **TOC** (:func:`overlap_matrix`): tracklets a, b cannot be the same person when
  ``cam_a == cam_b`` and ``max(s_a, s_b) <= min(e_a, e_b)`` (one person is in one place at a time;
  two tracks in one camera at the same time are two people).  Sparse boolean, N x N without the
  diagonal (training cannot-links for ICDBSCAN) or Q x G (test, +inf / +1000 penalty).
  Vectorised: the overlapping pairs are exactly ``s_a <= s_b <= e_a`` or ``s_b < s_a <= e_b``,
  two disjoint range queries on the spans sorted by start.
* **SCP**: ``S[a, b] = [cam_a == cam_b]`` from the camera ids (never stored).
* **STS**: P from ``transit.TransitModel`` (a C x C x B table, stored when known).

File format (``np.savez_compressed``, read with ``allow_pickle=False``): ``format``, ``split``
("train" or "test"); per tracklet list X in {"train"} or {"query", "gallery"}: ``X_keys``,
``X_camids``, ``X_start``, ``X_end``; the TOC as CSR arrays ``toc_indptr``, ``toc_indices``,
``toc_shape``; optionally ``transit_table`` / ``transit_bin``.  Loading checks every array against
the dataset (size and order) and stops with :class:`AuxMismatchError` naming the file, the expected
and the found shape.  The original ``.pickle`` files load only with ``allow_pickle=True``
(``CLUSTER.ALLOW_PICKLE``): unpickling can execute code.
"""
from __future__ import annotations

import logging
import os
import pickle
from typing import NamedTuple, Optional, Sequence

import numpy as np
import scipy.sparse as sp

from ..utils.safe_npz import (InvalidFileError, UnsafeFileError, checked_csr, read_npz, require,
                              require_int_array, require_scalar)
from .icdbscan import cannot_link_matrix
from .transit import TransitModel

__all__ = ["AuxMismatchError", "TrackletMeta", "TrainAux", "overlap_matrix", "save_aux",
           "load_aux", "load_train_aux", "load_test_aux", "build_test_aux", "mine_train_aux", "mine_test_aux", "LEGACY_TRAIN",
           "LEGACY_TEST", "load_legacy_pickle"]

logger = logging.getLogger(__name__)

FORMAT = "unreidusl-aux-1"
LEGACY_TRAIN = {"toc": "cannotlink_pts.pickle", "scp": "cross_camera_relation_train.pickle",
                "sts": "spatio_temporal_relation_train.pickle"}
LEGACY_TEST = {"toc": "overlap_relation.pickle", "scp": "cross_camera_relation_infer.pickle",
               "sts": "spatio_temporal_relation_infer.pickle"}


class AuxMismatchError(InvalidFileError):
    """An auxiliary file does not fit the dataset (size or order) or is malformed."""


AUX_FIX = ("re-create it with tools/mine_aux.py, or leave CLUSTER.AUX_PATH empty to mine it from "
           "the dataset")


def sample_key(sample) -> str:
    parts = os.path.normpath(str(sample.frames[0])).replace("\\", "/").split("/")[-3:]
    return "/".join(parts) + f"#{len(sample.frames)}"


class TrackletMeta(NamedTuple):
    keys: np.ndarray      # str
    camids: np.ndarray    # int64
    start: np.ndarray     # float64 world frames, NaN = unknown
    end: np.ndarray

    @classmethod
    def from_samples(cls, samples: Sequence) -> "TrackletMeta":
        n = len(samples)
        start, end = np.full(n, np.nan), np.full(n, np.nan)
        for i, s in enumerate(samples):
            if len(s.timestamps):
                ts = np.asarray(s.timestamps, np.float64)
                start[i], end[i] = ts.min(), ts.max()
        keys = np.array([sample_key(s) for s in samples], dtype=str) if n else np.zeros(0, str)
        return cls(keys, np.array([s.camid for s in samples], np.int64).reshape(n), start, end)

    def __len__(self) -> int:
        return int(self.camids.shape[0])

    @property
    def has_time(self) -> bool:
        return bool(len(self)) and bool(np.isfinite(self.start).all())


def _range_pairs(owner_lo, owner_hi):
    """(owner, position) for every position in [lo[o], hi[o]) of every owner o."""
    counts = np.maximum(owner_hi - owner_lo, 0)
    owner = np.repeat(np.arange(counts.shape[0], dtype=np.int64), counts)
    offs = np.arange(int(counts.sum()), dtype=np.int64) - np.repeat(np.cumsum(counts) - counts, counts)
    return owner, np.repeat(owner_lo, counts) + offs


def _overlap_one_way(sa, ea, sb):
    """Pairs (i in a, j in b) with ``s_a <= s_b <= e_a``."""
    order = np.argsort(sb, kind="stable")
    sbs = sb[order]
    lo, hi = np.searchsorted(sbs, sa, "left"), np.searchsorted(sbs, ea, "right")
    i, pos = _range_pairs(lo, hi)
    return i, order[pos]


def overlap_matrix(a: TrackletMeta, b: Optional[TrackletMeta] = None) -> sp.csr_matrix:
    """TOC: boolean CSR, ``[cam_a == cam_b and spans overlap]``; ``b=None``: a x a, no diagonal.
    Tracklets without a time span get no constraint."""
    square = b is None
    b = a if square else b
    rows, cols = [], []
    for cam in np.intersect1d(a.camids, b.camids):
        ia = np.flatnonzero((a.camids == cam) & np.isfinite(a.start))
        ib = np.flatnonzero((b.camids == cam) & np.isfinite(b.start))
        if not ia.size or not ib.size:
            continue
        sa, ea, sb, eb = a.start[ia], a.end[ia], b.start[ib], b.end[ib]
        i1, j1 = _overlap_one_way(sa, ea, sb)                # s_a <= s_b <= e_a
        j2, i2 = _overlap_one_way(sb, eb, sa)                # s_b <= s_a <= e_b ...
        strict = sb[j2] < sa[i2]                             # ... with s_b < s_a (disjoint sets)
        rows += [ia[i1], ia[i2[strict]]]
        cols += [ib[j1], ib[j2[strict]]]
    rows = np.concatenate(rows) if rows else np.zeros(0, np.int64)
    cols = np.concatenate(cols) if cols else np.zeros(0, np.int64)
    if square:
        off = rows != cols
        rows, cols = rows[off], cols[off]
    m = sp.csr_matrix((np.ones(rows.shape[0], bool), (rows, cols)), shape=(len(a), len(b)))
    m.sum_duplicates()
    return m


class TrainAux(NamedTuple):
    """Training-side auxiliary information for N tracklets in dataset order.

    ``cannot_link``: N x N boolean CSR (TOC) or None; ``same_camera`` / ``plausibility``: callables
    ``(rows, cols) -> values`` for pairs, or None; ``transit``: the STS model when known; ``meta``."""
    meta: TrackletMeta
    cannot_link: Optional[sp.csr_matrix]
    same_camera: Optional[object]
    plausibility: Optional[object]
    transit: Optional[TransitModel]
    source: str


def _camera_pairs(camids):
    return lambda r, c: camids[r] == camids[c]


def _model_pairs(model, meta):
    return lambda r, c: model.pairs(meta, r, meta, c)


def mine_train_aux(samples, transit: Optional[TransitModel] = None) -> TrainAux:
    """TOC / SCP (and STS when a ``transit`` model is given) from the samples' metadata."""
    meta = TrackletMeta.from_samples(samples)
    toc = overlap_matrix(meta) if meta.has_time else None
    plaus = _model_pairs(transit, meta) if transit is not None else None
    return TrainAux(meta, toc, _camera_pairs(meta.camids), plaus, transit, "dataset metadata")


def mine_test_aux(query, gallery, transit: Optional[TransitModel] = None) -> dict:
    """Q x G ``overlap`` (TOC, sparse) and lazy ``plausibility`` (STS, when ``transit`` is given),
    as ``ReidEvaluator(..., overlap=, plausibility=)`` takes them.  SCP comes from the camera ids."""
    from .transit import TransitPlausibility  # noqa: PLC0415

    q, g = TrackletMeta.from_samples(query), TrackletMeta.from_samples(gallery)
    out = {"overlap": overlap_matrix(q, g) if q.has_time and g.has_time else None,
           "plausibility": None if transit is None else TransitPlausibility(transit, q, g)}
    return out


def _meta_arrays(prefix, meta):
    return {f"{prefix}_keys": meta.keys, f"{prefix}_camids": meta.camids,
            f"{prefix}_start": meta.start, f"{prefix}_end": meta.end}


def save_aux(path: str, split: str, metas: dict, toc=None, transit=None) -> str:
    """Write an aux file: ``split`` "train" (``metas={"train": m}``, N x N TOC) or "test"
    (``metas={"query": q, "gallery": g}``, Q x G TOC)."""
    arrays = {"format": np.array(FORMAT), "split": np.array(split)}
    for prefix, meta in metas.items():
        arrays.update(_meta_arrays(prefix, meta))
    if toc is not None:
        toc = sp.csr_matrix(toc, dtype=bool)
        arrays.update(toc_indptr=toc.indptr.astype(np.int64), toc_indices=toc.indices.astype(np.int32),
                      toc_shape=np.array(toc.shape, np.int64))
    if transit is not None:
        arrays.update(transit_table=transit.table, transit_bin=np.float64(transit.bin_size))
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    np.savez_compressed(path, **arrays)
    return path


def _check_meta(path, prefix, z, expected: TrackletMeta):
    n = len(expected)
    keys = z[f"{prefix}_keys"]
    if keys.dtype.kind != "U":
        raise AuxMismatchError(f"{path}: {prefix}_keys must be strings, found dtype {keys.dtype}: "
                               f"{AUX_FIX}")
    if keys.shape != (n,):
        raise AuxMismatchError(f"{path}: the {prefix} list has shape {keys.shape}, expected ({n},) "
                               f"for the dataset's {prefix} split; re-mine it with tools/mine_aux.py")
    diff = np.flatnonzero(keys != expected.keys)
    if diff.size:
        i = int(diff[0])
        raise AuxMismatchError(
            f"{path}: the {prefix} list ({n} tracklets) is in another order or from another dataset: "
            f"row {i} is {keys[i]!r} in the file but {expected.keys[i]!r} in the dataset "
            f"({diff.size} rows differ); re-mine it with tools/mine_aux.py")


def check_shape(path, what, found, expected):
    """Raise :class:`AuxMismatchError` unless ``found == expected`` (shapes)."""
    if tuple(found) != tuple(expected):
        raise AuxMismatchError(f"{path}: {what} has shape {tuple(found)}, expected "
                               f"{tuple(expected)} (dataset size and order)")


def load_aux(path: str, metas: dict):
    """Read an aux file checked against ``metas`` (as for :func:`save_aux`): returns
    ``(toc CSR or None, TransitModel or None)``.  Every array is validated (keys, dtypes, shapes,
    index ranges, finiteness) before use; a malformed file raises :class:`AuxMismatchError`."""
    z = read_npz(path, "auxiliary-information file", AUX_FIX)
    try:
        return _read_aux(path, z, metas)
    except InvalidFileError as e:
        if isinstance(e, AuxMismatchError):
            raise
        raise AuxMismatchError(str(e)) from None


def _read_aux(path, z, metas):
    if "format" not in z or z["format"].shape != () or str(z["format"]) != FORMAT:
        raise AuxMismatchError(f"{path}: not an unreidusl aux file (format {FORMAT!r}): {AUX_FIX}")
    for prefix, meta in metas.items():
        if f"{prefix}_keys" not in z:
            raise AuxMismatchError(f"{path}: the file has no {prefix} list ({prefix}_keys): "
                                   f"{AUX_FIX}")
        _check_meta(path, prefix, z, meta)
    toc = transit = None
    if any(k in z for k in ("toc_indptr", "toc_indices", "toc_shape")):
        require(z, path, ("toc_indptr", "toc_indices", "toc_shape"), AUX_FIX)
        expected = tuple(len(m) for m in metas.values())
        expected = expected * 2 if len(expected) == 1 else expected
        shape = require_int_array(z, path, "toc_shape", AUX_FIX)
        check_shape(path, "the TOC matrix", shape, expected)
        toc = checked_csr(path, "the TOC matrix (toc_indptr / toc_indices)",
                          require_int_array(z, path, "toc_indptr", AUX_FIX),
                          require_int_array(z, path, "toc_indices", AUX_FIX), expected, AUX_FIX)
    if "transit_table" in z or "transit_bin" in z:
        require(z, path, ("transit_table", "transit_bin"), AUX_FIX)
        transit = TransitModel.from_arrays(path, z["transit_table"],
                                           require_scalar(z, path, "transit_bin", AUX_FIX), AUX_FIX)
    return toc, transit


def load_legacy_pickle(path: str, allow_pickle: bool):
    """Unpickle an original AuxUSLReID file (only when ``allow_pickle``): arrays / tensors become
    numpy arrays, containers of sets stay as they are."""
    if not allow_pickle:
        raise UnsafeFileError(
            f"{path} is a pickle file; unpickling can execute arbitrary code. Set "
            f"CLUSTER.ALLOW_PICKLE True only for files you trust, or mine the auxiliary "
            f"information from the dataset with tools/mine_aux.py (.npz, no pickle)")
    with open(path, "rb") as f:
        obj = pickle.load(f)  # noqa: S301 - explicit opt-in above
    if hasattr(obj, "detach"):
        obj = obj.detach().cpu().numpy()
    return np.asarray(obj) if hasattr(obj, "__array__") else obj


def _legacy_train(folder, meta, allow_pickle):
    n = len(meta)
    found = {k: os.path.join(folder, v) for k, v in LEGACY_TRAIN.items()
             if os.path.isfile(os.path.join(folder, v))}
    if not found:
        raise FileNotFoundError(f"{folder}: neither train_aux.npz nor any of the original pickles "
                                f"({', '.join(LEGACY_TRAIN.values())})")
    toc = scp = sts = None
    if "toc" in found:
        sets = load_legacy_pickle(found["toc"], allow_pickle)
        if len(sets) != n:
            raise AuxMismatchError(f"{found['toc']}: cannot-link sets for {len(sets)} tracklets, "
                                   f"expected {n} (shape ({len(sets)},) vs ({n},))")
        toc = cannot_link_matrix(sets, n)
    for key in ("scp", "sts"):
        if key in found:
            arr = np.asarray(load_legacy_pickle(found[key], allow_pickle))
            check_shape(found[key], f"the {key.upper()} matrix", arr.shape, (n, n))
            if key == "scp":
                scp = arr
            else:
                sts = arr
    logger.warning("Loaded the original pickles from %s: their order is positional (sorted train "
                   "list) and cannot be verified beyond the shape", folder)
    same = (lambda r, c: scp[r, c]) if scp is not None else _camera_pairs(meta.camids)
    plaus = (lambda r, c: sts[r, c]) if sts is not None else None
    return TrainAux(meta, toc, same, plaus, None, f"pickles in {folder}")


def load_train_aux(path: str, samples, allow_pickle: bool = False) -> TrainAux:
    """Training aux information from ``path``: an aux ``.npz`` file, or a folder holding
    ``train_aux.npz`` or (with ``allow_pickle``) the original pickles."""
    meta = TrackletMeta.from_samples(samples)
    if os.path.isdir(path):
        npz = os.path.join(path, "train_aux.npz")
        if not os.path.isfile(npz):
            return _legacy_train(path, meta, allow_pickle)
        path = npz
    if path.endswith((".pickle", ".pkl")):
        raise ValueError(f"{path}: give the folder holding the original pickles "
                         f"({', '.join(LEGACY_TRAIN.values())}), not one file")
    if not os.path.isfile(path):
        raise FileNotFoundError(f"CLUSTER.AUX_PATH={path} does not exist")
    toc, transit = load_aux(path, {"train": meta})
    plaus = _model_pairs(transit, meta) if transit is not None else None
    return TrainAux(meta, toc, _camera_pairs(meta.camids), plaus, transit, path)


def load_test_aux(path: str, query, gallery, allow_pickle: bool = False) -> dict:
    """Test-side ``overlap`` / ``same_camera`` / ``plausibility`` (Q x G, checked) from an aux
    ``.npz`` (``test_aux.npz`` in a folder) or the original pickles (with ``allow_pickle``).
    ``same_camera`` is None unless a pickle gives it (the evaluator derives it from camera ids)."""
    from .transit import TransitPlausibility  # noqa: PLC0415

    q, g = TrackletMeta.from_samples(query), TrackletMeta.from_samples(gallery)
    out = {"overlap": None, "same_camera": None, "plausibility": None}
    if os.path.isdir(path) and not os.path.isfile(os.path.join(path, "test_aux.npz")):
        shape = (len(q), len(g))
        for key, arg in (("toc", "overlap"), ("scp", "same_camera"), ("sts", "plausibility")):
            file = os.path.join(path, LEGACY_TEST[key])
            if os.path.isfile(file):
                arr = np.asarray(load_legacy_pickle(file, allow_pickle))
                check_shape(file, f"the {key.upper()} matrix", arr.shape, shape)
                out[arg] = arr
        return out
    path = os.path.join(path, "test_aux.npz") if os.path.isdir(path) else path
    toc, transit = load_aux(path, {"query": q, "gallery": g})
    out["overlap"] = toc
    if transit is not None:
        out["plausibility"] = TransitPlausibility(transit, q, g)
    return out


def _test_aux_folder(cfg) -> str:
    """CLUSTER.AUX_PATH when it holds test-side information, else ""."""
    folder = cfg.CLUSTER.AUX_PATH
    if not folder or not os.path.isdir(folder):
        return ""
    names = ["test_aux.npz"] + list(LEGACY_TEST.values())
    return folder if any(os.path.isfile(os.path.join(folder, f)) for f in names) else ""


def _transit_file(cfg) -> str:
    return os.path.join(cfg.OUTPUT_DIR, "aux", "transit.npz")


def test_transit_available(cfg) -> bool:
    """Whether TEST.STR_OPTION has a spatio-temporal model to use: test information under
    CLUSTER.AUX_PATH, or the model the trainer estimated at its last clustering."""
    return bool(_test_aux_folder(cfg)) or os.path.isfile(_transit_file(cfg))


def build_test_aux(cfg, query, gallery) -> dict:
    """``overlap`` / ``same_camera`` / ``plausibility`` keyword arguments for
    ``ReidEvaluator(cfg, query, gallery, **kw)`` (or ``evaluator.set_aux(**kw)``) following the
    ``TEST`` switches: from ``CLUSTER.AUX_PATH`` when it holds test information (``test_aux.npz`` or
    the original pickles), else mined from the samples, with the STS model the trainer estimated
    last (``OUTPUT_DIR/aux/transit.npz``; re-read at every call, it changes with the model)."""
    t, c = cfg.TEST, cfg.CLUSTER
    if not (t.OVERLAP_CONSTRAINT or t.CCE_OPTION or t.STR_OPTION):
        return {}
    folder = _test_aux_folder(cfg)
    if folder:
        out = load_test_aux(folder, query, gallery, c.ALLOW_PICKLE)
    else:
        transit_file = _transit_file(cfg)
        transit = TransitModel.load(transit_file) if os.path.isfile(transit_file) else None
        out = dict(mine_test_aux(query, gallery, transit), same_camera=None)
    if t.OVERLAP_CONSTRAINT and out["overlap"] is None:
        raise ValueError("TEST.OVERLAP_CONSTRAINT needs query / gallery time spans: this dataset has "
                         "no timestamps; give CLUSTER.AUX_PATH with a test_aux.npz")
    if t.STR_OPTION and out["plausibility"] is None:
        raise ValueError("TEST.STR_OPTION needs a transit model: train with CLUSTER.STR_OPTION (it "
                         "writes OUTPUT_DIR/aux/transit.npz) or give CLUSTER.AUX_PATH with one")
    return out
