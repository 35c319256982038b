"""Cluster-size histogram as a PNG (Pillow only; matplotlib is not required).

Bars: number of clusters per size class.  Sizes up to ``linear_max`` (default 16) get one bar each;
larger sizes are grouped in powers of two ``(2^k, 2^(k+1)]``.  The title gives the number of
clusters and outliers; each bar carries its count.
"""
from __future__ import annotations

import os
from typing import List, Tuple

import numpy as np
from PIL import Image, ImageDraw, ImageFont

__all__ = ["size_classes", "cluster_size_histogram"]

_W, _H, _L, _R, _T, _B = 720, 360, 56, 16, 40, 56


def size_classes(labels, linear_max: int = 16) -> Tuple[List[str], np.ndarray]:
    """(bar labels, cluster counts) of the size histogram of ``labels`` (-1 = outlier)."""
    labels = np.asarray(labels, dtype=np.int64)
    sizes = np.bincount(labels[labels >= 0]) if (labels >= 0).any() else np.zeros(0, np.int64)
    sizes = sizes[sizes > 0]
    top = int(sizes.max()) if sizes.size else 1
    names, counts = [], []
    for s in range(1, min(top, linear_max) + 1):
        names.append(str(s))
        counts.append(int((sizes == s).sum()))
    lo = linear_max
    while lo < top:
        hi = lo * 2
        names.append(f"{lo + 1}-{hi}")
        counts.append(int(((sizes > lo) & (sizes <= hi)).sum()))
        lo = hi
    return names, np.asarray(counts, np.int64)


def cluster_size_histogram(labels, path: str, title: str = "") -> str:
    """Draw the histogram of ``labels`` into ``path`` (PNG); returns the path."""
    labels = np.asarray(labels)
    names, counts = size_classes(labels)
    img = Image.new("RGB", (_W, _H), "white")
    draw = ImageDraw.Draw(img)
    font = ImageFont.load_default()
    n_clusters = int(len(np.unique(labels[labels >= 0])))
    head = f"{title}  " if title else ""
    draw.text((_L, 10), f"{head}{n_clusters} clusters, {int((labels < 0).sum())} outliers "
                        f"of {labels.shape[0]}", fill="black", font=font)
    x0, x1, y0, y1 = _L, _W - _R, _T, _H - _B
    draw.line([(x0, y0), (x0, y1), (x1, y1)], fill="black")
    top = max(1, int(counts.max()) if counts.size else 1)
    for frac in (0.0, 0.5, 1.0):                            # y ticks
        y = y1 - frac * (y1 - y0)
        draw.line([(x0 - 4, y), (x0, y)], fill="black")
        draw.text((4, y - 6), f"{frac * top:.0f}", fill="black", font=font)
    slot = (x1 - x0) / max(1, len(names))
    for i, (name, c) in enumerate(zip(names, counts)):
        left = x0 + i * slot + 0.15 * slot
        right = x0 + (i + 1) * slot - 0.15 * slot
        h = (y1 - y0) * c / top
        if c:
            draw.rectangle([left, y1 - h, right, y1], fill=(60, 110, 200), outline="black")
            draw.text((left, y1 - h - 12), str(int(c)), fill="black", font=font)
        draw.text((left, y1 + 4 + 12 * (i % 2)), name, fill="black", font=font)
    draw.text((x0 + (x1 - x0) / 2 - 40, _H - 18), "cluster size", fill="black", font=font)
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    img.save(path)
    return path
