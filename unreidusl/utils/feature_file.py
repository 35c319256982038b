"""Features on disk: a headerless float32 file of ``N x d`` rows in C order, opened as a
``numpy.memmap`` (size = ``N * d * 4`` bytes), so that the kNN of the clustering reads it in tiles and
chunks and never holds it whole in memory (``CLUSTER.FEATURES_ON_DISK``, docs/clustering.md)."""
from __future__ import annotations

import os

import numpy as np

__all__ = ["open_feature_file"]

_MODES = ("r", "r+", "w+")


def open_feature_file(path, num_rows: int, dim: int, mode: str = "r") -> np.memmap:
    """The ``[num_rows, dim]`` float32 memmap of ``path``.

    ``mode``: ``"r"`` (read-only) or ``"r+"`` open an existing file, whose size must be
    ``num_rows * dim * 4`` bytes; ``"w+"`` creates a zero-filled file, replacing an existing one (it
    is unlinked first, so arrays still mapping the old file keep their data)."""
    if mode not in _MODES:
        raise ValueError(f"mode must be one of {_MODES}, got {mode!r}")
    num_rows, dim = int(num_rows), int(dim)
    if num_rows < 1 or dim < 1:
        raise ValueError(f"a feature file holds at least one row of at least one value, got "
                         f"{num_rows} x {dim}")
    expected = num_rows * dim * 4
    path = os.fspath(path)
    if mode == "w+":
        if os.path.exists(path):
            os.remove(path)
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    else:
        if not os.path.isfile(path):
            raise FileNotFoundError(f"feature file {path} does not exist")
        size = os.path.getsize(path)
        if size != expected:
            raise ValueError(f"feature file {path} holds {size} bytes, but {num_rows} x {dim} float32 "
                             f"features need {expected} bytes ({size / (4 * dim):.6g} rows of {dim})")
    return np.memmap(path, dtype=np.float32, mode=mode, shape=(num_rows, dim))
