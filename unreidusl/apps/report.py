"""The identity-discovery report: ``clusters.csv`` and ``report.html`` for one clustering.

Written by ``unreidusl-discover`` and, with ``CLUSTER.REPORT True``, for the last epoch of every
training run (``OUTPUT_DIR/clusters/``, ``engine/report_hook.py``). Into ``out_dir``:

* ``clusters.csv``: one row per item: ``item, path, num_frames, cluster`` (-1 = outlier),
  ``camera`` (0-based), ``time_start, time_end`` (the item's timestamps, empty when unknown),
  ``distance`` (cosine distance ``1 - cos(f, c)`` of the item's clustering feature to its
  cluster's centroid ``c`` = normalised mean of the members' features; for an outlier, to the
  nearest centroid), ``nearest_cluster`` (that cluster, for outliers), ``outlier`` (0/1) and, when
  identities are known, ``pid``;
* ``report.html`` (opens from the disk, images linked relatively): the summary (items, clusters,
  outliers, eps, distance and clusterer, and with ground truth the pairwise precision / recall /
  F-score, NMI and the clusters per identity), the cluster-size histogram (``sizes.png``), the
  training curves when a ``metrics.json`` is known (``curves.png``), with ground truth the worst
  merges (clusters holding the most pairs of different identities) and splits (identities with the
  most pairs in different clusters), one contact sheet per discovered identity ordered by size,
  with its cameras and time span, and the outliers;
* ``sheets/``: the contact-sheet PNGs (Pillow; at most ``max_per_sheet`` thumbnails each, the
  rest counted). With ground truth the borders tell the identities apart: in a cluster's sheet
  green = its most frequent identity, red = the others; in a split's sheet green = the identity's
  most frequent cluster, red = other clusters, grey = outliers.
"""
from __future__ import annotations

import csv
import logging
import os
from collections import Counter
from typing import Dict, List, Optional, Sequence

import numpy as np
import torch

from ..data import Sample

__all__ = ["centroid_distances", "write_cluster_report", "merges_and_splits"]

logger = logging.getLogger(__name__)


def centroid_distances(features, labels: np.ndarray, chunk: int = 8192):
    """``(distance [N], nearest cluster [N])``: ``1 - cos`` to the item's cluster centroid, and for
    outliers (-1) to the nearest centroid (module docstring). No cluster: NaN and -1."""
    x = torch.nn.functional.normalize(torch.as_tensor(features).float(), dim=1)
    labels = np.asarray(labels, np.int64)
    n = x.shape[0]
    c = int(labels.max(initial=-1)) + 1
    dist, nearest = np.full(n, np.nan), np.full(n, -1, np.int64)
    if c == 0:
        return dist, nearest
    keep = labels >= 0
    sums = torch.zeros(c, x.shape[1]).index_add_(0, torch.from_numpy(labels[keep]), x[keep])
    cent = torch.nn.functional.normalize(sums, dim=1)
    for s in range(0, n, chunk):
        sim = x[s:s + chunk] @ cent.t()
        lab = labels[s:s + chunk]
        own = sim[torch.arange(sim.shape[0]), torch.from_numpy(np.maximum(lab, 0))]
        best_sim, best = sim.max(1)
        d = np.where(lab >= 0, 1.0 - own.numpy(), 1.0 - best_sim.numpy())
        dist[s:s + chunk] = np.maximum(d, 0.0)
        nearest[s:s + chunk] = np.where(lab >= 0, lab, best.numpy())
    return dist, nearest


def _pairs(n) -> int:
    return int(n) * (int(n) - 1) // 2


def merges_and_splits(labels: np.ndarray, truth: np.ndarray, top: int = 10):
    """``(merges, splits)``: the ``top`` clusters with the most pairs of different identities
    (``{"cluster", "size", "false_pairs", "identities": [(pid, count), ...]}``) and the ``top``
    identities with the most pairs in different clusters, outliers counting as singletons
    (``{"pid", "size", "missed_pairs", "clusters": [(cluster, count), ...]}``)."""
    labels, truth = np.asarray(labels, np.int64), np.asarray(truth, np.int64)
    merges, splits = [], []
    for c in np.unique(labels[labels >= 0]):
        counts = Counter(truth[labels == c].tolist())
        size = sum(counts.values())
        false = _pairs(size) - sum(_pairs(v) for v in counts.values())
        if false > 0:
            merges.append({"cluster": int(c), "size": size, "false_pairs": false,
                           "identities": counts.most_common()})
    for t in np.unique(truth):
        member = labels[truth == t]
        counts = Counter(member[member >= 0].tolist())
        outliers = int((member < 0).sum())
        size = member.shape[0]
        missed = _pairs(size) - sum(_pairs(v) for v in counts.values())
        if missed > 0:
            splits.append({"pid": int(t), "size": size, "missed_pairs": missed,
                           "clusters": counts.most_common() + ([(-1, outliers)] if outliers else [])})
    merges.sort(key=lambda m: (-m["false_pairs"], m["cluster"]))
    splits.sort(key=lambda s: (-s["missed_pairs"], s["pid"]))
    return merges[:top], splits[:top]


def _span(samples: Sequence[Sample], idx) -> str:
    ts = [t for i in idx for t in samples[i].timestamps]
    return f"{min(ts):g}-{max(ts):g}" if ts else "unknown"


def _cams(samples: Sequence[Sample], idx) -> str:
    counts = Counter(samples[i].camid for i in idx)
    return ", ".join(f"c{cam} x{n}" for cam, n in sorted(counts.items()))


def write_cluster_report(out_dir: str, samples: Sequence[Sample], labels, features,
                         metrics: Optional[Dict[str, float]] = None, truth=None, title: str = "",
                         curves: Optional[List[Dict[str, float]]] = None, max_per_sheet: int = 60,
                         info: Optional[Dict[str, str]] = None) -> Dict[str, str]:
    """Write ``clusters.csv``, ``report.html``, ``sizes.png`` (and ``curves.png`` with ``curves``)
    and ``sheets/`` into ``out_dir`` (module docstring); returns their paths."""
    from ..cluster.plots import cluster_size_histogram  # noqa: PLC0415
    from ..utils.charts import training_curves  # noqa: PLC0415
    from .html import GREEN, GREY, RED, esc, page, contact_sheet  # noqa: PLC0415

    os.makedirs(os.path.join(out_dir, "sheets"), exist_ok=True)
    labels = np.asarray(labels, np.int64)
    n = len(samples)
    if labels.shape != (n,):
        raise ValueError(f"{labels.shape[0]} labels for {n} items")
    truth = None if truth is None else np.asarray(truth, np.int64)
    dist, nearest = centroid_distances(features, labels)
    paths = {"csv": os.path.join(out_dir, "clusters.csv"), "html": os.path.join(out_dir, "report.html")}
    with open(paths["csv"], "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["item", "path", "num_frames", "cluster", "camera", "time_start", "time_end",
                    "distance", "nearest_cluster", "outlier"] + (["pid"] if truth is not None else []))
        for i, s in enumerate(samples):
            ts = s.timestamps
            row = [i, s.frames[0], len(s.frames), int(labels[i]), s.camid,
                   f"{min(ts):g}" if ts else "", f"{max(ts):g}" if ts else "",
                   "" if np.isnan(dist[i]) else f"{dist[i]:.6f}", int(nearest[i]), int(labels[i] < 0)]
            w.writerow(row + ([int(truth[i])] if truth is not None else []))
    paths["sizes"] = cluster_size_histogram(labels, os.path.join(out_dir, "sizes.png"))
    if curves:
        drawn = training_curves(curves, os.path.join(out_dir, "curves.png"), "training",
                                len(np.unique(truth)) if truth is not None else None)
        if drawn:
            paths["curves"] = drawn

    def sheet(name, idx, captions, heading, key=None) -> str:
        """Contact sheet of items ``idx``; with ``key`` (an array over items) the borders are green
        for the most frequent value of ``key`` among them and red for the others (grey: -1)."""
        shown = list(idx[:max_per_sheet])
        colours = [GREY] * len(shown)
        if key is not None and len(idx):
            vals, counts = np.unique(key[idx], return_counts=True)
            top = vals[np.lexsort((vals, -counts))][0]
            colours = [GREY if key[i] < 0 else (GREEN if key[i] == top else RED) for i in shown]
        contact_sheet([samples[i].frames[0] for i in shown], [captions(i) for i in shown],
                      os.path.join(out_dir, "sheets", name), colours, title=heading,
                      more=max(0, len(idx) - len(shown)))
        return f"sheets/{name}"

    def cap(i) -> str:
        return f"c{samples[i].camid}" + (f" id{truth[i]}" if truth is not None else "")

    body = []
    summary = {"items": n, **(info or {})}
    summary.update({k: (f"{v:.4f}" if isinstance(v, float) else v) for k, v in (metrics or {}).items()})
    body.append("<h2>Summary</h2><table class=\"kv\">" + "".join(
        f"<tr><th>{esc(k)}</th><td>{esc(v)}</td></tr>" for k, v in summary.items()) + "</table>")
    body.append("<p class=\"note\">clusters.csv lists every item with its cluster (-1 = outlier), "
                "camera, time, the distance to its centroid and the outlier flag.</p>")
    body.append(f"<h2>Cluster sizes</h2><img src=\"{os.path.basename(paths['sizes'])}\" "
                f"alt=\"cluster-size histogram\">")
    if "curves" in paths:
        body.append(f"<h2>Training curves</h2><img src=\"{os.path.basename(paths['curves'])}\" "
                    f"alt=\"training curves\" style=\"max-width:100%\">")
    if truth is not None:
        merges, splits = merges_and_splits(labels, truth)
        body.append("<h2>Worst merges</h2><p class=\"note\">Clusters holding the most pairs of "
                    "different identities.</p>")
        if not merges:
            body.append("<p>None: every cluster holds one identity.</p>")
        for m in merges:
            comp = ", ".join(f"id {p} x{k}" for p, k in m["identities"])
            idx = np.flatnonzero(labels == m["cluster"])
            idx = idx[np.argsort(truth[idx], kind="stable")]
            src = sheet(f"merge_{m['cluster']:05d}.png", idx, cap, f"cluster {m['cluster']}", truth)
            body.append(f"<h3>cluster {m['cluster']}: {m['size']} items, {m['false_pairs']} false "
                        f"pairs ({esc(comp)})</h3><img src=\"{src}\" alt=\"cluster {m['cluster']}\">")
        body.append("<h2>Worst splits</h2><p class=\"note\">Identities with the most pairs in "
                    "different clusters (caption: the cluster, -1 = outlier).</p>")
        if not splits:
            body.append("<p>None: every identity is in one cluster.</p>")
        for s in splits:
            comp = ", ".join(("outlier" if c < 0 else f"cluster {c}") + f" x{k}" for c, k in s["clusters"])
            idx = np.flatnonzero(truth == s["pid"])
            idx = idx[np.argsort(labels[idx], kind="stable")]
            src = sheet(f"split_{s['pid']:05d}.png", idx,
                        lambda i: f"k{labels[i]} c{samples[i].camid}", f"identity {s['pid']}", labels)
            body.append(f"<h3>identity {s['pid']}: {s['size']} items, {s['missed_pairs']} missed "
                        f"pairs ({esc(comp)})</h3><img src=\"{src}\" alt=\"identity {s['pid']}\">")
    ids, sizes = np.unique(labels[labels >= 0], return_counts=True)
    order = ids[np.lexsort((ids, -sizes))]
    body.append(f"<h2>Discovered identities ({len(order)})</h2><p class=\"note\">Ordered by size; "
                f"caption: camera{' and true identity' if truth is not None else ''}.</p>")
    for c in order:
        idx = np.flatnonzero(labels == c)
        idx = idx[np.argsort(dist[idx], kind="stable")]                      # closest first
        src = sheet(f"cluster_{c:05d}.png", idx, cap, f"cluster {c}", truth)
        body.append(f"<h3 id=\"cluster-{c}\">cluster {c}: {len(idx)} items; cameras {_cams(samples, idx)}; "
                    f"time {_span(samples, idx)}</h3><img src=\"{src}\" alt=\"cluster {c}\">")
    out = np.flatnonzero(labels < 0)
    body.append(f"<h2 id=\"outliers\">Outliers ({len(out)})</h2>")
    if len(out):
        out = out[np.argsort(dist[out], kind="stable")]
        src = sheet("outliers.png", out, lambda i: f"k{nearest[i]} {dist[i]:.2f}", "outliers "
                    "(caption: nearest cluster, distance)")
        body.append(f"<img src=\"{src}\" alt=\"outliers\">")
    with open(paths["html"], "w", encoding="utf-8") as f:
        f.write(page(title or "Identity discovery", body))
    logger.info("Cluster report (%d clusters, %d outliers) written to %s", len(order), len(out),
                os.path.abspath(paths["html"]))
    return paths
