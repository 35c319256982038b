"""Which frames of a tracklet go into a clip (vectorised; no per-frame Python loop).

* ``random``: a window of ``L`` consecutive frames starting uniformly in ``[0, n − L]`` (the last
  frame can be drawn, unlike AuxUSLReID's ``[0, n − L − 1]``); a tracklet shorter than ``L`` is
  padded cyclically (0, 1, .., n−1, 0, 1, ..).  Without ``rng`` the window is centred.
* ``evenly``: ``L`` equal segments of the tracklet, one frame from each (uniform inside the
  segment with ``rng``, its centre without); shorter tracklets repeat frames in order.
* ``all``: every frame in order (test time, see ``FrameDataset``).
"""
from typing import Optional

import numpy as np

MODES = ("random", "evenly", "all")


def clip_indices(n: int, length: int, mode: str = "random",
                 rng: Optional[np.random.Generator] = None) -> np.ndarray:
    """Frame indices (int64, length ``length``; ``n`` for "all") of a tracklet of ``n`` frames."""
    if n < 1:
        raise ValueError("a tracklet needs at least one frame")
    if mode == "all":
        return np.arange(n, dtype=np.int64)
    if length < 1:
        raise ValueError(f"clip length must be >= 1, got {length}")
    if mode == "random":
        span = max(n - length, 0)
        begin = int(rng.integers(0, span + 1)) if rng is not None else span // 2
        return (begin + np.arange(length, dtype=np.int64)) % n
    if mode == "evenly":
        i = np.arange(length, dtype=np.int64)
        lo = (i * n) // length
        hi = np.maximum(((i + 1) * n) // length, lo + 1)
        if rng is None:
            return (lo + hi - 1) // 2
        return np.minimum(lo + (rng.random(length) * (hi - lo)).astype(np.int64), n - 1)
    raise ValueError(f"clip sampling mode must be one of {MODES}, got {mode!r}")
