"""Auxiliary-information files: the toolkit's ``.npz`` format (written by ``tools/mine_aux.py``,
read with ``allow_pickle=False`` and validated array by array) and the opt-in loader of the original
AuxUSLReID pickles.

File format (``np.savez_compressed``): ``format``, ``split`` ("train" or "test"); per tracklet list
X in {"train"} or {"query", "gallery"}: ``X_keys``, ``X_camids``, ``X_start``, ``X_end``; the TOC as
CSR arrays ``toc_indptr``, ``toc_indices``, ``toc_shape``; optionally ``transit_table`` /
``transit_bin``.  Loading checks every array against the dataset (size and order) and stops with
:class:`AuxMismatchError` naming the file, the expected and the found shape.  The original
``.pickle`` files load only with ``allow_pickle=True`` (``AUX.ALLOW_PICKLE``): unpickling can
execute code.
"""
from __future__ import annotations

import logging
import os
import pickle

import numpy as np
import scipy.sparse as sp

from ..cluster.icdbscan import cannot_link_matrix
from ..utils.safe_npz import (InvalidFileError, UnsafeFileError, checked_csr, read_npz, require,
                              require_int_array, require_scalar)
from .meta import TrackletMeta
from .mining import TrainAux, camera_pairs, model_pairs
from .transit import TransitModel, TransitPlausibility

__all__ = ["AuxMismatchError", "save_aux", "load_aux", "load_train_aux", "load_test_aux",
           "load_legacy_pickle", "check_shape", "LEGACY_TRAIN", "LEGACY_TEST", "FORMAT"]

logger = logging.getLogger(__name__)

FORMAT = "unreidusl-aux-1"
LEGACY_TRAIN = {"toc": "cannotlink_pts.pickle", "scp": "cross_camera_relation_train.pickle",
                "sts": "spatio_temporal_relation_train.pickle"}
LEGACY_TEST = {"toc": "overlap_relation.pickle", "scp": "cross_camera_relation_infer.pickle",
               "sts": "spatio_temporal_relation_infer.pickle"}


class AuxMismatchError(InvalidFileError):
    """An auxiliary file does not fit the dataset (size or order) or is malformed."""


AUX_FIX = ("re-create it with tools/mine_aux.py, or leave AUX.PATH empty to mine it from "
           "the dataset")


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
            f"AUX.ALLOW_PICKLE True only for files you trust, or mine the auxiliary "
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
    same = (lambda r, c: scp[r, c]) if scp is not None else camera_pairs(meta.camids)
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
        raise FileNotFoundError(f"AUX.PATH={path} does not exist")
    toc, transit = load_aux(path, {"train": meta})
    plaus = model_pairs(transit, meta) if transit is not None else None
    return TrainAux(meta, toc, camera_pairs(meta.camids), plaus, transit, path)


def load_test_aux(path: str, query, gallery, allow_pickle: bool = False) -> dict:
    """Test-side ``overlap`` / ``same_camera`` / ``plausibility`` (Q x G, checked) from an aux
    ``.npz`` (``test_aux.npz`` in a folder) or the original pickles (with ``allow_pickle``).
    ``same_camera`` is None unless a pickle gives it (the evaluator derives it from camera ids)."""
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
