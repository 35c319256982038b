"""Identity discovery with a trained model (``unreidusl-discover``, ``tools/discover.py``).

Runs the toolkit's pseudo-labelling on a collection, exactly as training clusters its training
set: the clustering features of the model (``cluster_extractor``, clip draws of a video sample
averaged), the configured distance (``CLUSTER.DISTANCE``), the auxiliary terms and clusterer
(``CLUSTER.*``) through ``cluster.pipeline.PseudoLabeler``, then writes ``clusters.csv`` and the
HTML report of ``apps/report.py`` into ``--output``.

With a training checkpoint the clustering is the one the next epoch of that run does (or did):
the eps is the one the run froze (``CLUSTER.ADAPTIVE`` with ``EPS_FROZEN``, stored in the
checkpoint), the epoch (clip draws, a clustering warm-up) is the checkpoint's. So on the training
split, ``model_000K.pth`` reproduces the pseudo-labels of epoch K + 1 of the log, their pairwise
precision / recall / F and NMI included. ``--eps`` / ``CLUSTER.EPS`` and any other ``CLUSTER`` key
change it. When every item's identity is known (a labelled or synthetic set) the report adds the
pairwise P / R / F, NMI, the worst merges and splits; with the run's ``metrics.json`` next to the
checkpoint it adds the training curves.

    unreidusl-discover --checkpoint output/synthetic/cluster_contrast/model_final.pth
    unreidusl-discover --checkpoint w.pth --items /data/unlabelled --output output/discover
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
from typing import Dict, Optional, Sequence

import numpy as np

from ..data import Sample
from .common import (AppError, add_model_arguments, cluster_features, collect_items,
                     items_have_identities, load_trained, parse_model_command)

__all__ = ["discover", "checkpoint_eps", "main"]

logger = logging.getLogger(__name__)


def checkpoint_eps(state: dict) -> Optional[float]:
    """The adaptive eps a training checkpoint froze (``hooks.PseudoLabelHook.eps``), or None."""
    eps = (state or {}).get("hooks", {}).get("PseudoLabelHook", {}).get("eps")
    return None if eps is None else float(eps)


def discover(model, cfg, samples: Sequence[Sample], out_dir: str, epoch: int = 0,
             eps_state: Optional[float] = None, metrics_json: str = "", title: str = "",
             extra_info: Optional[Dict[str, str]] = None, features=None) -> dict:
    """Cluster ``samples`` (module docstring) and write the report; returns ``{"result":
    ClusterResult, "metrics": {...}, "paths": {...}}``. ``features``: precomputed clustering
    features (else extracted); ``eps_state``: a frozen adaptive eps to reuse."""
    from ..cluster import cluster_quality, cluster_summary  # noqa: PLC0415
    from ..cluster.pipeline import PseudoLabeler  # noqa: PLC0415
    from ..utils.charts import curves_from_metrics  # noqa: PLC0415
    from .report import write_cluster_report  # noqa: PLC0415

    samples = list(samples)
    os.makedirs(out_dir, exist_ok=True)
    start = time.perf_counter()
    if features is None:
        features = cluster_features(model, cfg, samples, epoch)
    labeler = PseudoLabeler(cfg, samples, out_dir)
    if hasattr(labeler, "set_epoch"):
        labeler.set_epoch(epoch)
    if eps_state is not None and hasattr(labeler, "load_state_dict"):
        labeler.load_state_dict({"eps": float(eps_state)})
    result = labeler(features)
    labels = result.labels
    metrics: Dict[str, float] = dict(cluster_summary(labels))
    truth = np.array([s.pid for s in samples]) if items_have_identities(samples) else None
    if truth is not None:
        metrics.update(cluster_quality(labels, truth))
    if result.eps is not None:
        metrics["eps"] = float(result.eps)
    distance = getattr(labeler, "distance", None)
    info = {"distance": "features" if distance is None else type(distance).__name__,
            "clusterer": type(labeler.clusterer).__name__, "epoch": epoch, **(extra_info or {})}
    curves = curves_from_metrics(metrics_json) if metrics_json and os.path.isfile(metrics_json) else None
    paths = write_cluster_report(out_dir, samples, labels, features, metrics, truth,
                                 title or "Identity discovery", curves, info=info)
    with open(os.path.join(out_dir, "summary.json"), "w", encoding="utf-8") as f:
        json.dump({**info, **metrics}, f, indent=1)
    msg = (f"{metrics['num_clusters']} identities discovered among {len(samples)} items, "
           f"{100 * metrics['outlier_ratio']:.1f}% outliers")
    if truth is not None:
        msg += (f"; pairwise P/R/F {metrics['pairwise_precision']:.3f}/{metrics['pairwise_recall']:.3f}/"
                f"{metrics['pairwise_f']:.3f}, NMI {metrics['nmi']:.3f}")
    if result.eps is not None:
        msg += f", eps {result.eps:.4f}"
    logger.info("%s (%s + %s, %.1fs)", msg, info["distance"], info["clusterer"],
                time.perf_counter() - start)
    return {"result": result, "metrics": metrics, "paths": paths}


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="unreidusl-discover", description=__doc__.splitlines()[0],
                                epilog="Sources: an image, a folder, a list file, dataset:SPLIT or "
                                       "dataset:NAME:SPLIT (docs/use_a_model.md).")
    p.add_argument("--items", nargs="+", default=["dataset:train"], metavar="SRC",
                   help="the collection (default dataset:train, the configured training split)")
    p.add_argument("--output", default="", metavar="DIR",
                   help="report folder (default: discover/ next to the checkpoint)")
    p.add_argument("--epoch", type=int, default=None,
                   help="epoch of the clustering (clip draws, warm-up; default: the checkpoint's)")
    p.add_argument("--eps", type=float, default=None,
                   help="DBSCAN radius (default: the run's frozen adaptive eps, else CLUSTER.EPS)")
    p.add_argument("--tracklets", action="store_true",
                   help="a folder's sub-folders of images are tracklets (one item each)")
    p.add_argument("--name-rule", default="",
                   help="parse pid / camera / time from file names: a dataset name (Market1501, "
                        "...) or a regex with groups pid, cam, time")
    add_model_arguments(p)
    return p


def main(argv=None) -> int:
    from ..utils.logger import setup_logger  # noqa: PLC0415

    args, out_dir = parse_model_command(build_parser(), argv, "discover")
    setup_logger(out_dir, filename="discover.log")
    opts = list(args.opts)
    if args.eps is not None:
        opts += ["CLUSTER.EPS", str(args.eps), "CLUSTER.ADAPTIVE", "False"]
    try:
        cfg, model, state = load_trained(args.checkpoint, args.config_file, opts)
        samples = collect_items(args.items, cfg, args.tracklets, args.name_rule)
        epoch = args.epoch if args.epoch is not None else int(state.get("epoch", 0) or 0)
        eps = None if args.eps is not None else checkpoint_eps(state)
        run_dir = os.path.dirname(os.path.abspath(args.checkpoint)) if args.checkpoint else ""
        metrics_json = os.path.join(run_dir, "metrics.json") if run_dir else ""
        discover(model, cfg, samples, out_dir, epoch, eps, metrics_json,
                 extra_info={"checkpoint": args.checkpoint or "random weights",
                             "source": " ".join(args.items)})
    except (AppError, ValueError, FileNotFoundError) as e:
        logger.error("%s: %s", type(e).__name__, e)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
