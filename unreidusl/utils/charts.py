"""Charts with matplotlib's Agg canvas (no display, no pyplot state, safe in any thread).

Every chart of the toolkit is drawn here or through :func:`figure` / :func:`save`: the
cluster-size histogram (``cluster/plots.py``), the CMC curve (``evaluation/visualize.py``) and the
training curves (:func:`training_curves`: test mAP / Rank-1, pseudo-label pairwise P/R/F and the
number of clusters per epoch, ``OUTPUT_DIR/curves.png`` and the discovery report). Image contact
sheets (rank lists, clusters) are Pillow compositions, not charts.
"""
from __future__ import annotations

import json
import os
from typing import Dict, Iterable, List, Optional

__all__ = ["figure", "save", "training_curves", "curves_from_metrics", "CURVE_KEYS"]

# The scalars the curves show, as the trainer logs them (metrics.json / trainer.storage).
CURVE_KEYS = ("test/mAP", "test/Rank-1", "cluster/pairwise_precision", "cluster/pairwise_recall",
              "cluster/pairwise_f", "cluster/nmi", "cluster/num_clusters")


def figure(width: float = 6.0, height: float = 3.6, dpi: int = 100):
    """A matplotlib ``Figure`` on an Agg canvas (nothing global is touched)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg  # noqa: PLC0415
    from matplotlib.figure import Figure  # noqa: PLC0415

    fig = Figure(figsize=(width, height), dpi=dpi)
    FigureCanvasAgg(fig)
    return fig


def save(fig, path: str) -> str:
    """Write ``fig`` as PNG to ``path`` (folders created); returns the path."""
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, format="png")
    return path


def curves_from_metrics(path: str) -> List[Dict[str, float]]:
    """Per-epoch records ``{"epoch": e, key: value}`` of :data:`CURVE_KEYS` from a trainer's
    ``metrics.json`` (JSON lines; the last value of an epoch wins). Epoch 0 holds the evaluation
    before training (``TEST.EVAL_AT_START``): the writer logs it with the first record of epoch 1,
    so when epoch 1 has two records with test metrics the first one is epoch 0's. Unreadable lines
    are skipped."""
    per_epoch: Dict[int, Dict[str, float]] = {}
    test_records: Dict[int, List[Dict[str, float]]] = {}
    with open(path, encoding="utf-8") as f:
        for line in f:
            try:
                rec = json.loads(line)
            except ValueError:
                continue
            if not isinstance(rec, dict) or "epoch" not in rec:
                continue
            vals = {k: float(rec[k]) for k in CURVE_KEYS if isinstance(rec.get(k), (int, float))
                    and not isinstance(rec.get(k), bool)}
            epoch = int(rec["epoch"])
            test = {k: v for k, v in vals.items() if k.startswith("test/")}
            if test:
                test_records.setdefault(epoch, []).append(test)
            per_epoch.setdefault(epoch, {}).update({k: v for k, v in vals.items() if k not in test})
    for epoch, recs in test_records.items():
        if epoch == 1 and len(recs) >= 2:
            per_epoch.setdefault(0, {}).update(recs[0])
            recs = recs[1:]
        per_epoch.setdefault(epoch, {}).update(recs[-1])
    return [{"epoch": e, **v} for e, v in sorted(per_epoch.items()) if v]


def _series(records: Iterable[Dict[str, float]], key: str):
    pts = [(r["epoch"], r[key]) for r in records if key in r]
    return [p[0] for p in pts], [p[1] for p in pts]


def training_curves(records: List[Dict[str, float]], path: str, title: str = "",
                    num_identities: Optional[int] = None) -> Optional[str]:
    """Draw the curves of ``records`` (``{"epoch": e, "test/mAP": ..., ...}``) into ``path``: test
    mAP and Rank-1 (%), pseudo-label pairwise precision / recall / F and NMI, and the number of
    clusters (with ``num_identities`` as a dashed line when known). Returns None when there is
    nothing to draw."""
    if not any(k in r for r in records for k in CURVE_KEYS):
        return None
    fig = figure(12.0, 3.6)
    panels = [("test (%)", [("test/mAP", "mAP"), ("test/Rank-1", "Rank-1")]),
              ("pseudo-labels vs truth", [("cluster/pairwise_precision", "precision"),
                                          ("cluster/pairwise_recall", "recall"),
                                          ("cluster/pairwise_f", "F"), ("cluster/nmi", "NMI")]),
              ("clusters", [("cluster/num_clusters", "clusters")])]
    for i, (name, series) in enumerate(panels):
        ax = fig.add_subplot(1, 3, i + 1)
        drawn = False
        for key, label in series:
            x, y = _series(records, key)
            if x:
                ax.plot(x, y, marker="o", ms=3, lw=1.5, label=label)
                drawn = True
        if name == "clusters" and num_identities:
            ax.axhline(num_identities, ls="--", color="grey", lw=1, label="true identities")
            drawn = True
        if not drawn:
            ax.text(0.5, 0.5, "not logged", ha="center", va="center", transform=ax.transAxes,
                    color="grey")
        elif name.startswith("pseudo"):
            ax.set_ylim(0, 1.02)
        ax.set(title=name, xlabel="epoch")
        ax.grid(alpha=0.3)
        if drawn:
            ax.legend(fontsize=8, loc="best")
        ax.xaxis.get_major_locator().set_params(integer=True)
    if title:
        fig.suptitle(title)
    return save(fig, path)
