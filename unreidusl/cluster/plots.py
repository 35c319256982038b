"""Cluster-size histogram as a PNG (matplotlib, Agg canvas: ``utils/charts.py``).

Bars: number of clusters per size class.  Sizes up to ``linear_max`` (default 16) get one bar each;
larger sizes are grouped in powers of two ``(2^k, 2^(k+1)]``.  The title gives the number of
clusters and outliers; each bar carries its count.
"""
from __future__ import annotations

from typing import List, Tuple

import numpy as np

__all__ = ["size_classes", "cluster_size_histogram"]


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
    from ..utils.charts import figure, save  # noqa: PLC0415 - matplotlib only when drawing

    labels = np.asarray(labels)
    names, counts = size_classes(labels)
    n_clusters = int(len(np.unique(labels[labels >= 0])))
    head = f"{title}  " if title else ""
    fig = figure(7.2, 3.6)
    ax = fig.add_subplot(1, 1, 1)
    x = np.arange(len(names))
    bars = ax.bar(x, counts, width=0.7, color="#3c6ec8", edgecolor="black", linewidth=0.6)
    for bar, c in zip(bars, counts):
        if c:
            ax.annotate(str(int(c)), (bar.get_x() + bar.get_width() / 2, bar.get_height()),
                        ha="center", va="bottom", fontsize=8, xytext=(0, 1),
                        textcoords="offset points")
    ax.set_xticks(x)
    ax.set_xticklabels(names, rotation=45 if len(names) > 12 else 0, fontsize=8)
    ax.set(xlabel="cluster size", ylabel="clusters",
           title=f"{head}{n_clusters} clusters, {int((labels < 0).sum())} outliers of "
                 f"{labels.shape[0]}")
    ax.set_ylim(0, max(1, int(counts.max()) if counts.size else 1) * 1.15)
    ax.grid(axis="y", alpha=0.3)
    return save(fig, path)
