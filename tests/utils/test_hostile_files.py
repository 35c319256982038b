"""Hostile files never reach compiled code unchecked.

A seeded generator throws 1,200 malformed auxiliary (train and test), transit-model and checkpoint
files at the loaders: each either loads an object that is valid (every index in range, every value
finite) or raises the toolkit's own error naming the file; nothing else.  The compiled kernels get
hostile index arrays directly, in a subprocess, which must exit cleanly; and a training run given
an aux file with an index of 2^30 stops with one line naming that file.
"""
import importlib.util
import io
import os
import subprocess
import sys
import textwrap
import zipfile

import numpy as np
import pytest
import torch

from unreidusl.auxinfo import TrackletMeta, load_aux, mine_train_aux, save_aux
from unreidusl.auxinfo.transit import TransitModel
from unreidusl.data import Sample
from unreidusl.utils.checkpoint import CheckpointError, load_checkpoint
from unreidusl.utils.safe_npz import InvalidFileError, UnsafeFileError

from helpers import ROOT, main, tiny_opts

HOSTILE_INTS = [2 ** 30, 2 ** 62, -3, -1, 500, 100_000, 7]
RAW_MUTATIONS = ("truncate", "flip", "garbage", "empty", "npy", "pickled")


def _samples(n, prefix, seed):
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        start = float(rng.integers(0, 50))
        ts = tuple(start + np.arange(5, dtype=float))
        frames = tuple(f"/d/{prefix}/{i:03d}/{i % 3:03d}/f{j}.jpg" for j in range(5))
        out.append(Sample(frames, i % 4, int(rng.integers(0, 2)), ts))
    return out


def _random_array(rng):
    kind = rng.integers(7)
    shape = [(), (int(rng.integers(0, 9)),), (2, 3), (3, 3, 2)][rng.integers(4)]
    if kind == 0:
        return rng.integers(-2 ** 40, 2 ** 40, size=shape)
    if kind == 1:
        a = rng.normal(size=shape)
        if a.size:
            a.flat[rng.integers(a.size)] = [np.nan, np.inf, -np.inf, 1e30][rng.integers(4)]
        return a
    if kind == 2:
        return rng.integers(0, 2, size=shape).astype(bool)
    if kind == 3:
        return np.full(shape, "x" * int(rng.integers(0, 4)))
    if kind == 4:
        return rng.integers(0, 2 ** 63, size=shape, dtype=np.uint64)
    if kind == 5:
        return np.zeros(shape, np.int32)
    return rng.uniform(0, 1, size=shape).astype(np.float32)


def _mutate_arrays(rng, arrays):
    """1-3 random edits: drop a key, replace an array, or poke a hostile value into one."""
    z = dict(arrays)
    for _ in range(int(rng.integers(1, 4))):
        key = sorted(z)[rng.integers(len(z))] if z else None
        op = rng.integers(5)
        if key is None:
            break
        if op == 0:
            del z[key]
        elif op == 1:
            z[key] = _random_array(rng)
        else:
            a = np.array(z[key], copy=True)
            if a.size == 0 or a.dtype.kind not in "iuf":
                z[key] = _random_array(rng)
                continue
            a = a.astype(np.int64) if a.dtype.kind in "iu" else a.astype(np.float64)
            if op == 2:
                a.flat[rng.integers(a.size)] = HOSTILE_INTS[rng.integers(len(HOSTILE_INTS))]
            elif op == 3:
                a.flat[rng.integers(a.size)] = np.nan if a.dtype.kind == "f" else -a.flat[0] - 1
            else:
                a = rng.permutation(a.ravel()).reshape(a.shape)
            z[key] = a
    return z


def _write_raw(rng, path, valid_bytes, arrays):
    """A file-level corruption of a valid file."""
    kind = RAW_MUTATIONS[rng.integers(len(RAW_MUTATIONS))]
    if kind == "truncate":
        data = valid_bytes[:int(rng.integers(0, len(valid_bytes)))]
    elif kind == "flip":
        data = bytearray(valid_bytes)
        for pos in rng.integers(0, len(data), size=int(rng.integers(1, 8))):
            data[pos] ^= int(rng.integers(1, 256))
        data = bytes(data)
    elif kind == "garbage":
        data = rng.bytes(int(rng.integers(1, 2000)))
    elif kind == "empty":
        data = b""
    elif kind == "npy":
        buf = io.BytesIO()
        np.save(buf, np.arange(5))
        data = buf.getvalue()
    else:
        buf = io.BytesIO()
        np.savez(buf, **dict(arrays, toc_indices=np.array([{1, 2}], dtype=object)))
        data = buf.getvalue()
    with open(path, "wb") as f:
        f.write(data)


def _npz_bytes(arrays):
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return buf.getvalue()


def _assert_valid_csr(m, shape):
    assert m.shape == shape
    assert m.indptr.shape == (shape[0] + 1,) and m.indptr[0] == 0 and m.indptr[-1] == m.indices.size
    assert (np.diff(m.indptr) >= 0).all()
    assert m.indices.size == 0 or (m.indices.min() >= 0 and m.indices.max() < shape[1])


def _assert_valid_transit(t):
    assert np.isfinite(t.table).all() and t.table.min() >= 0 and t.table.max() <= 1
    assert np.isfinite(t.bin_size) and t.bin_size > 0


def _check(path, load):
    """Run ``load``; return the result or None after a well-formed refusal naming ``path``."""
    try:
        return load()
    except (InvalidFileError, UnsafeFileError, CheckpointError) as e:
        assert path in str(e), f"{type(e).__name__} does not name the file: {e}"
        return None


def _fuzz_files(tmp_path, rng, count, valid_arrays, name):
    """Yield ``count`` paths of malformed versions of ``valid_arrays`` (mutated or corrupted)."""
    valid_bytes = _npz_bytes(valid_arrays)
    for i in range(count):
        path = str(tmp_path / f"{name}_{i}.npz")
        if rng.random() < 0.75:
            with open(path, "wb") as f:
                f.write(_npz_bytes(_mutate_arrays(rng, valid_arrays)))
        else:
            _write_raw(rng, path, valid_bytes, valid_arrays)
        yield path


def test_fuzz_aux_files(tmp_path):
    rng = np.random.default_rng(1234)
    train = mine_train_aux(_samples(12, "train", 0))
    assert train.cannot_link.nnz > 0
    q, g = (TrackletMeta.from_samples(_samples(n, p, s)) for n, p, s in ((4, "query", 1), (9, "gallery", 2)))
    cases = []
    for split, metas in (("train", {"train": train.meta}), ("test", {"query": q, "gallery": g})):
        shape = (12, 12) if split == "train" else (4, 9)
        toc = train.cannot_link if split == "train" else np.eye(4, 9, dtype=bool)
        path = save_aux(str(tmp_path / f"{split}_valid.npz"), split, metas, toc,
                        TransitModel(np.full((2, 2, 3), 0.5), 25.0))
        with np.load(path) as z:
            valid = {k: z[k] for k in z.files}
        cases.append((split, metas, shape, valid))
    loaded = refused = 0
    for split, metas, shape, valid in cases:
        for path in _fuzz_files(tmp_path, rng, 250, valid, split):
            out = _check(path, lambda: load_aux(path, metas))
            if out is None:
                refused += 1
                continue
            loaded += 1
            toc, transit = out
            if toc is not None:
                _assert_valid_csr(toc, shape)
            if transit is not None:
                _assert_valid_transit(transit)
    assert loaded + refused == 500 and loaded > 20 and refused > 300


def test_fuzz_transit_files(tmp_path):
    rng = np.random.default_rng(99)
    valid = {"transit_table": np.random.default_rng(0).uniform(size=(3, 3, 4)).astype(np.float32),
             "transit_bin": np.float64(50.0)}
    loaded = 0
    for path in _fuzz_files(tmp_path, rng, 300, valid, "transit"):
        model = _check(path, lambda: TransitModel.load(path))
        if model is not None:
            loaded += 1
            _assert_valid_transit(model)
            assert np.isfinite(model.plausibility([0], [0.0], [1.0], [1], [5.0], [9.0])).all()
    assert 0 < loaded < 300


def _checkpoint_bytes():
    buf = io.BytesIO()
    torch.save({"model": {"w": torch.arange(6.0)}, "epoch": 1, "iter": 3}, buf)
    return buf.getvalue()


def test_fuzz_checkpoint_files(tmp_path):
    rng = np.random.default_rng(7)
    valid = _checkpoint_bytes()
    loaded = 0
    for i in range(400):
        path = str(tmp_path / f"ckpt_{i}.pth")
        kind = rng.integers(5)
        if kind == 0:
            data = valid[:int(rng.integers(0, len(valid)))]
        elif kind == 1:
            data = bytearray(valid)
            for pos in rng.integers(0, len(data), size=int(rng.integers(1, 6))):
                data[pos] ^= int(rng.integers(1, 256))
            data = bytes(data)
        elif kind == 2:
            data = rng.bytes(int(rng.integers(0, 3000)))
        elif kind == 3:  # a zip archive with other members
            buf = io.BytesIO()
            with zipfile.ZipFile(buf, "w") as zf:
                zf.writestr("archive/data.pkl", rng.bytes(int(rng.integers(1, 200))))
            data = buf.getvalue()
        else:  # a valid torch file of something that is not a dict
            buf = io.BytesIO()
            torch.save([torch.zeros(2), 3][rng.integers(2)], buf)
            data = buf.getvalue()
        with open(path, "wb") as f:
            f.write(data)
        state = _check(path, lambda: load_checkpoint(path))
        if state is not None:
            loaded += 1
            assert isinstance(state, dict)
    assert loaded < 400


@pytest.mark.skipif(
    any(importlib.util.find_spec(m) is None
        for m in ("unreidusl.cluster.icdbscan_cy", "unreidusl.evaluation.rank_cy")),
    reason="compiled kernels not built (run `pip install -e .`)")
def test_compiled_kernels_refuse_hostile_indices_in_a_subprocess():
    script = textwrap.dedent("""
        import numpy as np
        from unreidusl.cluster import icdbscan_cy
        from unreidusl.evaluation import rank_cy

        i64, i32 = np.int64, np.int32
        good = (np.array([0, 1, 2, 3], i64), np.array([0, 1, 2], i32))
        none = (np.zeros(4, i64), np.zeros(0, i32))
        hostile = [
            (np.array([0, 1, 2, 3], i64), np.array([0, 1 << 30, 2], i32)),  # index far out
            (np.array([0, 1, 2, 3], i64), np.array([0, -3, 2], i32)),       # negative index
            (np.array([0, 1, 2, 3], i64), np.array([0, 3, 2], i32)),        # index == n
            (np.array([0, 2, 1, 3], i64), np.array([0, 1, 2], i32)),        # decreasing indptr
            (np.array([0, 1, 2, 1 << 40], i64), np.array([0, 1, 2], i32)),  # indptr past the end
            (np.array([1, 1, 2, 3], i64), np.array([0, 1, 2], i32)),        # indptr not from 0
            (np.array([0, 1, 2], i64), np.array([0, 1, 2], i32)),           # n + 1 != len(cl indptr)
        ]
        refused = 0
        for ptr, idx in hostile:
            for nb, cl in ((( ptr, idx), none), (good, (ptr, idx))):
                try:
                    icdbscan_cy.grow(nb[0], nb[1], cl[0], cl[1], 1)
                except ValueError:
                    refused += 1
        print("icdbscan refused", refused)
        assert refused == 2 * len(hostile), refused
        assert list(icdbscan_cy.grow(*good, *none, 1)) == [0, 1, 2]

        d = np.random.default_rng(0).random((2, 3))
        ids = np.array([0, 1], i64), np.array([0, 0, 1], i64)
        out = np.zeros(2), np.zeros(2), np.zeros(2, i64), np.zeros(2, i64)
        bad_orders = [np.array([0, 1 << 40, 2], i64), np.array([0, -1, 2], i64)]
        for order in bad_orders:
            try:
                rank_cy.rank_chunk_cy(d, ids[0], ids[0], ids[1], ids[1], order, np.zeros(2, i64),
                                      np.full(2, 3, i64), False, *out)
                raise SystemExit("rank_chunk_cy accepted a hostile g_order")
            except ValueError:
                pass
        for lo, hi in ((np.array([0, -5], i64), np.array([3, 3], i64)),
                       (np.array([0, 0], i64), np.array([3, 99], i64))):
            try:
                rank_cy.rank_chunk_cy(d, ids[0], ids[0], ids[1], ids[1], np.arange(3, dtype=i64),
                                      lo, hi, False, *out)
                raise SystemExit("rank_chunk_cy accepted hostile lo/hi")
            except ValueError:
                pass
        print("clean")
    """)
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120,
                          cwd=ROOT)
    assert proc.returncode == 0, (proc.returncode, proc.stdout, proc.stderr)
    assert "clean" in proc.stdout


@pytest.mark.slow
def test_training_with_an_out_of_range_aux_index_stops_with_one_line(tiny_root, tmp_path, capsys):
    from unreidusl.data import build_dataset
    from unreidusl.engine import setup_cfg

    opts = tiny_opts(tiny_root, tmp_path / "run", **{"SOLVER.MAX_EPOCHS": 1,
                                                     "CLUSTER.TOC.ENABLED": True})
    cfg = setup_cfg("", opts)
    samples = build_dataset(cfg, cfg.DATASETS.TRAIN).train
    aux = mine_train_aux(samples)
    path = save_aux(str(tmp_path / "bad.npz"), "train", {"train": aux.meta}, aux.cannot_link)
    with np.load(path) as z:
        arrays = {k: z[k] for k in z.files}
    n = len(samples)
    arrays["toc_indptr"] = np.r_[0, np.ones(n, np.int64)]       # one cannot-link, of point 0 ...
    arrays["toc_indices"] = np.array([2 ** 30])                  # ... with a point that does not exist
    np.savez(path, **arrays)
    rc = main(opts + ["AUX.PATH", path])
    out = capsys.readouterr()
    assert rc == 1
    line = [ln for ln in (out.out + out.err).splitlines() if "ERROR" in ln]
    assert len(line) == 1 and path in line[0] and "tools/mine_aux.py" in line[0], line
    assert "Traceback" not in out.out + out.err
