#!/usr/bin/env python
"""Mine the auxiliary information (TOC, SCP, STS) of a dataset from its own metadata.

    python tools/mine_aux.py --config-file F [--out DIR] [--transit-from-labels] [KEY VALUE ...]

Writes, into ``--out`` (default ``OUTPUT_DIR/auxinfo``):

* ``train_aux.npz``: the training tracklets (keys, cameras, time spans) and the N x N TOC
  cannot-links (same camera, overlapping time spans), in the dataset's training order
  (``DATASETS.TRAIN``, with ``DATASETS.MODE`` / ``DENSE_STEP`` applied);
* ``test_aux.npz``: query / gallery tracklets and the Q x G TOC matrix (``DATASETS.TEST``).

SCP needs no file (camera ids).  STS needs a transit-time model: the trainer estimates it at every
clustering from the pairs its model deems the same identity (``OUTPUT_DIR/auxinfo/transit.npz``);
``--transit-from-labels`` estimates it here from the *ground-truth* training identities instead
(an oracle for analysis: it uses labels an unsupervised method does not have) and stores it in
both files.  Use them with ``AUX.PATH DIR`` (training and evaluation).
"""
import argparse
import logging
import os
import sys

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

from unreidusl.auxinfo import TrackletMeta, TransitModel, overlap_matrix, save_aux  # noqa: E402
from unreidusl.data import build_dataset  # noqa: E402
from unreidusl.engine import setup_cfg  # noqa: E402

logger = logging.getLogger("unreidusl")


def label_pairs(pids, max_per_id=200, seed=0):
    """All (i, j), i < j, of equal pid (at most ``max_per_id`` tracklets per identity)."""
    rng = np.random.default_rng(seed)
    rows, cols = [], []
    for pid in np.unique(pids):
        idx = np.flatnonzero(pids == pid)
        if idx.size > max_per_id:
            idx = np.sort(rng.choice(idx, max_per_id, replace=False))
        i, j = np.triu_indices(idx.size, 1)
        rows.append(idx[i])
        cols.append(idx[j])
    return np.concatenate(rows), np.concatenate(cols)


def mine(cfg, out_dir, transit_from_labels=False):
    """Write train_aux.npz / test_aux.npz; returns a dict of statistics."""
    c = cfg.CLUSTER
    train_set = build_dataset(cfg, cfg.DATASETS.TRAIN)
    test_set = (train_set if cfg.DATASETS.TEST == cfg.DATASETS.TRAIN
                else build_dataset(cfg, cfg.DATASETS.TEST))
    meta = TrackletMeta.from_samples(train_set.train)
    if not meta.has_time:
        raise SystemExit(f"{cfg.DATASETS.TRAIN}: the training samples carry no timestamps, so TOC "
                         f"and STS cannot be mined from this layout")
    toc = overlap_matrix(meta)
    transit = None
    if transit_from_labels:
        rows, cols = label_pairs(np.array([s.pid for s in train_set.train]))
        transit = TransitModel.estimate(meta, rows, cols, bin_size=c.STS.BIN, sigma=c.STS.SIGMA,
                                        prior=c.STS.PRIOR)
    save_aux(os.path.join(out_dir, "train_aux.npz"), "train", {"train": meta}, toc, transit)
    stats = {"train": len(meta), "train_cannot_link_pairs": toc.nnz // 2,
             "partners_per_tracklet": toc.nnz / max(1, len(meta))}
    q, g = TrackletMeta.from_samples(test_set.query), TrackletMeta.from_samples(test_set.gallery)
    if q.has_time and g.has_time:
        qg = overlap_matrix(q, g)
        save_aux(os.path.join(out_dir, "test_aux.npz"), "test", {"query": q, "gallery": g}, qg,
                 transit)
        stats.update(query=len(q), gallery=len(g), test_overlap_pairs=qg.nnz)
    return stats


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config-file", default="", metavar="FILE")
    p.add_argument("--out", default="", help="output folder (default OUTPUT_DIR/auxinfo)")
    p.add_argument("--transit-from-labels", action="store_true",
                   help="estimate the STS transit model from ground-truth training ids (oracle)")
    p.add_argument("opts", nargs=argparse.REMAINDER, default=[], help="KEY VALUE overrides")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    cfg = setup_cfg(args.config_file, args.opts)
    out = args.out or os.path.join(cfg.OUTPUT_DIR, "auxinfo")
    stats = mine(cfg, out, args.transit_from_labels)
    logger.info("Wrote %s: %s", out, ", ".join(f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}"
                                              for k, v in stats.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
