#!/usr/bin/env python
"""Ablation of the auxiliary information (TOC, SCP, STS, must-link) on pseudo-label quality.

    python tools/aux_ablation.py --config-file F --features histogram [--eps 0.4,0.5,0.6] [KEY VALUE ...]
    python tools/aux_ablation.py --config-file F --features model [MODEL.WEIGHTS out/model_final.pth]

The first-epoch clustering of the synthetic video recipe, with and without TOC / SCP / STS:

    python tools/aux_ablation.py --config-file configs/Synthetic/mtcluster_video.yml --features model --eps 0.5,0.6

Features of the training tracklets (``DATASETS.TRAIN``, ``DATASETS.MODE`` applied) come from a
model (``--features model``: exactly the features of the trainer's clustering at the start of an
epoch, ``CLUSTER_SEQ_LEN`` clips drawn as in epoch 1; the model is ``MODEL.WEIGHTS`` or, without
it, the trainer's initial model (built after seeding with ``SEED``, saved to
``--out/model_init.pth``), so that the table is the first-epoch clustering of a training run with
the same config) or, with no training at all, from colour histograms (``--features histogram``:
8x8x8 RGB histogram in 4 stripes, Hellinger-normalised, averaged over up to ``--frames`` frames
per tracklet: an image feature with a strong camera bias, the situation SCP / STS target) or, as a
controlled experiment, from the identities (``--features simulated``: ``normalise(u_pid + b v_cam
+ s e)``, Gaussian u, v, e; ``--cam-bias`` b, ``--noise`` s: a camera-biased "model" of known
quality on the dataset's real cameras and time stamps).  One distance (``CLUSTER.DISTANCE``) is
computed and every variant clusters it through ``cluster.pipeline.PseudoLabeler``:

    base  (DBSCAN) | +SCP | +STS | +TOC (ICDBSCAN) | +SCP+STS | +TOC+SCP+STS | (+ must-link)

once per eps setting: the adaptive eps (``CLUSTER.ADAPTIVE_RHO``) and each fixed ``--eps``.  The
table gives pairwise precision / recall / F-score and NMI against the ground-truth identities,
the number of clusters and the outlier ratio; it is printed and written (Markdown + JSON) to
``--out`` (default ``OUTPUT_DIR/aux_ablation``).
"""
import argparse
import json
import logging
import os
import sys
import time

import numpy as np
import torch
from tabulate import tabulate

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

from unreidusl.cluster import build_distance, cluster_quality, cluster_summary  # noqa: E402
from unreidusl.auxinfo import mine_train_aux  # noqa: E402
from unreidusl.cluster.pipeline import PseudoLabeler, tracklet_groups  # noqa: E402
from unreidusl.data import build_dataset  # noqa: E402
from unreidusl.engine import setup_cfg  # noqa: E402

logger = logging.getLogger("unreidusl")

VARIANTS = [("base", {}), ("+SCP", {"SCP.ENABLED": True}), ("+STS", {"STS.ENABLED": True}),
            ("+TOC", {"TOC.ENABLED": True}), ("+SCP+STS", {"SCP.ENABLED": True, "STS.ENABLED": True}),
            ("+TOC+SCP+STS", {"TOC.ENABLED": True, "SCP.ENABLED": True, "STS.ENABLED": True})]


def histogram_features(samples, frames=4):
    from unreidusl.data.synthetic.baseline import color_histogram  # noqa: PLC0415

    out = np.empty((len(samples), 2048), np.float32)
    for i, s in enumerate(samples):
        pick = np.unique(np.linspace(0, len(s.frames) - 1, min(frames, len(s.frames))).astype(int))
        f = np.mean([color_histogram(s.frames[j], bins=8, stripes=4) for j in pick], axis=0)
        out[i] = f / max(np.linalg.norm(f), 1e-12)
    return torch.from_numpy(out)


def simulated_features(samples, cam_bias=1.0, noise=1.0, dim=256, seed=0):
    """``normalise(u_pid + cam_bias * v_cam + noise * e_i)`` with u, v, e ~ N(0, I / dim): a
    controlled stand-in for a camera-biased model (uses the labels only to make the features)."""
    rng = np.random.default_rng(seed)
    pids = np.unique([s.pid for s in samples], return_inverse=True)[1]
    cams = np.array([s.camid for s in samples])
    u = rng.standard_normal((pids.max() + 1, dim))
    v = rng.standard_normal((cams.max() + 1, dim))
    x = u[pids] + cam_bias * v[cams] + noise * rng.standard_normal((len(samples), dim))
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    return torch.from_numpy(x.astype(np.float32))


def model_features(cfg, samples, out_dir):
    """Clustering features of ``MODEL.WEIGHTS`` or of the initial model (module docstring)."""
    from unreidusl.evaluation.extract import extract_cluster_features  # noqa: PLC0415
    from unreidusl.modeling import build_model  # noqa: PLC0415
    from unreidusl.utils.checkpoint import atomic_torch_save, load_checkpoint  # noqa: PLC0415
    from unreidusl.utils.env import seed_all  # noqa: PLC0415

    if cfg.DATALOADER.CLUSTER_SAMPLE_MULTI != 1:
        raise SystemExit("--features model compares one clip per tracklet: set "
                         "DATALOADER.CLUSTER_SAMPLE_MULTI 1")
    seed_all(cfg.SEED)                                   # as default_setup before DefaultTrainer
    model = build_model(cfg)
    if cfg.MODEL.WEIGHTS:
        state = load_checkpoint(cfg.MODEL.WEIGHTS)
        model.load_state_dict(state.get("model", state))
    else:
        path = os.path.join(out_dir, "model_init.pth")
        atomic_torch_save({"model": model.state_dict()}, path)
        logger.info("No MODEL.WEIGHTS: the initial model (SEED %d), saved to %s", cfg.SEED, path)
    return extract_cluster_features(model, cfg, samples, epoch=0)[0]


def variant_cfg(cfg, opts):
    c = cfg.clone()
    c.defrost()
    for k, v in opts.items():
        node = c.CLUSTER
        *parents, leaf = k.split(".")
        for p in parents:
            node = node[p]
        node[leaf] = v
    c.freeze()
    return c


def run(cfg, features, samples, eps_list, out_dir):
    truth = np.array([s.pid for s in samples])
    t = time.perf_counter()
    dist = build_distance(cfg)(features)
    logger.info("%s on %d tracklets: %.1fs", cfg.CLUSTER.DISTANCE, len(samples), time.perf_counter() - t)
    aux = mine_train_aux(samples)
    variants = list(VARIANTS)
    try:
        if (tracklet_groups(samples) >= 0).any():
            variants += [("+must-link", {"MUST_LINK": True}),
                         ("+TOC+SCP+STS+must-link", {"TOC.ENABLED": True, "SCP.ENABLED": True,
                                                     "STS.ENABLED": True, "MUST_LINK": True})]
    except ValueError:
        pass                                                 # image dataset: no tracklet groups
    rows = []
    for eps in [None] + list(eps_list):
        for name, opts in variants:
            opts = dict(opts, ADAPTIVE=eps is None, EPS=cfg.CLUSTER.EPS if eps is None else eps)
            labeler = PseudoLabeler(variant_cfg(cfg, opts), samples, os.path.join(out_dir, "runs"))
            labeler._aux = aux
            result = labeler(features, dist=dist)
            labels = result.labels
            q = {**cluster_summary(labels), **cluster_quality(labels, truth)}
            rows.append({"eps_mode": "adaptive" if eps is None else f"fixed {eps}", "variant": name,
                         "eps": result.eps, "P": q["pairwise_precision"], "R": q["pairwise_recall"],
                         "F": q["pairwise_f"], "NMI": q["nmi"], "clusters": float(q["num_clusters"]),
                         "outliers": q["outlier_ratio"], "seconds": result.stats["seconds"]})
            logger.info("%s %s: F %.3f", rows[-1]["eps_mode"], name, rows[-1]["F"])
    return rows, {"tracklets": len(samples), "identities": int(len(np.unique(truth))),
                  "cannot_link_pairs": 0 if aux.cannot_link is None else aux.cannot_link.nnz // 2,
                  "stored_per_row": dist.nnz / dist.shape[0] if hasattr(dist, "nnz") else None}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config-file", default="", metavar="FILE")
    p.add_argument("--features", choices=("model", "histogram", "simulated"), default="histogram")
    p.add_argument("--cam-bias", type=float, default=1.0, help="simulated features: camera bias")
    p.add_argument("--noise", type=float, default=1.0, help="simulated features: noise level")
    p.add_argument("--seeds", default="0", help="simulated features: comma-separated seeds; the "
                                                "table gives the mean over them")
    p.add_argument("--frames", type=int, default=4, help="frames per tracklet (histogram features)")
    p.add_argument("--eps", default="", help="fixed eps values to add, comma-separated: 0.5,0.6")
    p.add_argument("--out", default="")
    p.add_argument("opts", nargs=argparse.REMAINDER, default=[], help="KEY VALUE overrides")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    cfg = setup_cfg(args.config_file, args.opts)
    out = args.out or os.path.join(cfg.OUTPUT_DIR, "aux_ablation")
    os.makedirs(out, exist_ok=True)
    samples = build_dataset(cfg, cfg.DATASETS.TRAIN).train
    t = time.perf_counter()
    seeds = [int(v) for v in args.seeds.split(",")] if args.features == "simulated" else [0]
    eps = [float(v) for v in args.eps.split(",") if v.strip()]
    runs = []
    for seed in seeds:
        if args.features == "histogram":
            feats = histogram_features(samples, args.frames)
        elif args.features == "simulated":
            feats = simulated_features(samples, args.cam_bias, args.noise, seed=seed)
        else:
            feats = model_features(cfg, samples, out)
        logger.info("%s features of %d tracklets: %.1fs", args.features, len(samples),
                    time.perf_counter() - t)
        rows, stats = run(cfg, feats, samples, eps, out)
        runs.append(rows)
    rows = [{k: (float(np.mean([r[i][k] for r in runs])) if isinstance(v, float) else v)
             for k, v in row.items()} for i, row in enumerate(runs[0])]
    keys = ["eps_mode", "variant", "eps", "P", "R", "F", "NMI", "clusters", "outliers"]
    table = tabulate([[r[k] for k in keys] for r in rows], headers=keys, tablefmt="github", floatfmt=".3f")
    model = cfg.MODEL.WEIGHTS or f"initial model, SEED {cfg.SEED}"
    kind = {"simulated": f"simulated (cam bias {args.cam_bias}, noise {args.noise}, mean of seeds "
                         f"{args.seeds})",
            "model": f"model ({model}; first-epoch clips)"}.get(args.features, args.features)
    head = (f"{cfg.DATASETS.TRAIN} (MODE {cfg.DATASETS.MODE}), {kind} features: "
            f"{stats['tracklets']} tracklets, {stats['identities']} ids, {stats['cannot_link_pairs']} "
            f"TOC pairs, rho {cfg.CLUSTER.ADAPTIVE_RHO}")
    print(f"{head}\n\n{table}")
    with open(os.path.join(out, "ablation.md"), "w") as f:
        f.write(f"{head}\n\n{table}\n")
    with open(os.path.join(out, "ablation.json"), "w") as f:
        json.dump({"stats": stats, "rows": rows, "features": args.features}, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
