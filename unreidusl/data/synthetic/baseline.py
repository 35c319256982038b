"""Colour-histogram re-ID baseline (NumPy only), used to calibrate the synthetic difficulty.

Features: joint RGB histogram (``bins``^3, optionally per horizontal stripe), L1-normalised and
square-rooted (Hellinger), compared with Euclidean distance.  Protocol as Market-1501: per query,
gallery items with the same pid *and* camera are removed, pid 0 counts as a negative, junk (-1)
is dropped, queries without a remaining positive are skipped.
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Dict, List, Sequence, Tuple, Union

import numpy as np
from PIL import Image

_IMAGE_DIRS = {  # (query dir, gallery dir) of the image layouts
    "bounding_box_test": ("query", "bounding_box_test"),
    "image_test": ("image_query", "image_test"),
}
_PID_CAM = re.compile(r"([-\d]+)_c(\d+)")


def color_histogram(path: Union[str, Path], bins: int = 8, stripes: int = 1) -> np.ndarray:
    """Hellinger-normalised joint RGB histogram, concatenated over ``stripes`` horizontal bands."""
    x = np.asarray(Image.open(path).convert("RGB"), dtype=np.int64) * bins // 256
    code = (x[..., 0] * bins + x[..., 1]) * bins + x[..., 2]
    feats = []
    for band in np.array_split(code, stripes, axis=0):
        h = np.bincount(band.ravel(), minlength=bins ** 3).astype(np.float64)
        feats.append(np.sqrt(h / max(1.0, h.sum())))
    return np.concatenate(feats) / np.sqrt(stripes)


def mean_average_precision(qf: np.ndarray, q_pids: Sequence[int], q_cams: Sequence[int],
                           gf: np.ndarray, g_pids: Sequence[int], g_cams: Sequence[int]
                           ) -> Dict[str, float]:
    """mAP and rank-1 with the Market-1501 junk rule (same pid and same camera removed)."""
    q_pids, q_cams = np.asarray(q_pids), np.asarray(q_cams)
    g_pids, g_cams = np.asarray(g_pids), np.asarray(g_cams)
    dist = (qf ** 2).sum(1)[:, None] + (gf ** 2).sum(1)[None, :] - 2.0 * qf @ gf.T
    aps, r1 = [], []
    for q in range(len(qf)):
        keep = ~((g_pids == q_pids[q]) & (g_cams == q_cams[q]))
        order = np.argsort(dist[q][keep], kind="stable")
        match = (g_pids[keep][order] == q_pids[q])
        if not match.any():
            continue
        hits = np.cumsum(match)
        ranks = np.flatnonzero(match) + 1
        aps.append(float(np.mean(hits[match] / ranks)))
        r1.append(float(match[0]))
    if not aps:
        raise ValueError("no valid query (no query has a cross-camera positive)")
    return {"mAP": float(np.mean(aps)), "rank1": float(np.mean(r1)), "num_queries": len(aps)}


def _scan(folder: Path) -> Tuple[List[Path], List[int], List[int]]:
    paths, pids, cams = [], [], []
    for p in sorted(folder.glob("*.jpg")):
        m = _PID_CAM.search(p.name)
        if m and int(m.group(1)) != -1:
            paths.append(p)
            pids.append(int(m.group(1)))
            cams.append(int(m.group(2)))
    return paths, pids, cams


def image_layout_baseline(dataset_dir: Union[str, Path], bins: int = 8, stripes: int = 1
                          ) -> Dict[str, float]:
    """Colour-histogram mAP on the query/gallery folders of an image layout."""
    dataset_dir = Path(dataset_dir)
    for gal, (qdir, gdir) in _IMAGE_DIRS.items():
        if (dataset_dir / gal).is_dir():
            break
    else:
        raise FileNotFoundError(f"{dataset_dir} has no bounding_box_test/ or image_test/ folder")
    qp, qpid, qcam = _scan(dataset_dir / qdir)
    gp, gpid, gcam = _scan(dataset_dir / gdir)
    qf = np.stack([color_histogram(p, bins, stripes) for p in qp])
    gf = np.stack([color_histogram(p, bins, stripes) for p in gp])
    return mean_average_precision(qf, qpid, qcam, gf, gpid, gcam)
