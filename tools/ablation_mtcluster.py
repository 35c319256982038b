#!/usr/bin/env python
"""AuxUSLReID ablation: train MTCluster once per cumulative variant and tabulate the results.

    python tools/ablation_mtcluster.py [--config-file configs/Synthetic/mtcluster_video.yml]
        [--variants baseline,+RLSCE,...] [KEY VALUE ...]

Variants (each adds to the previous one): baseline (CE + soft-margin triplet, fixed
SOLVER.ITERS_PER_EPOCH, no auxiliary information) → +RLSCE → +WATL → +DTI (dynamic iterations)
→ +TOC (ICDBSCAN cannot-links and the test-time overlap constraint) → +STS → +SCP. Every run
writes its own OUTPUT_DIR/<variant>/; the table (final test mAP, Rank-1 and pseudo-label pairwise
F) is printed and saved as OUTPUT_DIR/ablation.md.
"""
import argparse
import json
import os
import sys
from typing import Dict, List

from tabulate import tabulate

from unreidusl.engine import setup_cfg
from unreidusl.engine.experiments import flatten_overrides, run_experiment
from unreidusl.engine.run_dir import OutputDirError

STEPS: List[tuple] = [
    ("baseline", {"MODEL.LOSSES.ID_OPTION": 1, "MODEL.LOSSES.TRI_OPTION": 1,
                  "DATALOADER.ITERS_CLUSTER_MULTIPLIER": -1}),
    ("+RLSCE", {"MODEL.LOSSES.ID_OPTION": 3}),
    ("+WATL", {"MODEL.LOSSES.TRI_OPTION": 2}),
    ("+DTI", {"DATALOADER.ITERS_CLUSTER_MULTIPLIER": None}),
    ("+TOC", {"CLUSTER.TOC.ENABLED": True, "TEST.TOC.ENABLED": True}),
    ("+STS", {"CLUSTER.STS.ENABLED": True, "TEST.STS.ENABLED": True}),
    ("+SCP", {"CLUSTER.SCP.ENABLED": True, "TEST.SCP.ENABLED": True}),
]


def variant_overrides(base_cfg, names: List[str]) -> Dict[str, Dict]:
    """Cumulative overrides of every variant up to the last requested one. ``None`` restores the
    config file's value (e.g. +DTI brings back its ITERS_CLUSTER_MULTIPLIER)."""
    known = [n for n, _ in STEPS]
    unknown = [n for n in names if n not in known]
    if unknown:
        raise SystemExit(f"error: unknown variants {unknown}; choose from {known}")
    current: Dict = {}
    out = {}
    for name, delta in STEPS:
        for key, value in delta.items():
            if value is None:
                node = base_cfg
                for part in key.split("."):
                    node = node[part]
                value = node
            current[key] = value
        if name in names:
            out[name] = dict(current)
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config-file", default="configs/Synthetic/mtcluster_video.yml")
    parser.add_argument("--variants", default=",".join(n for n, _ in STEPS))
    parser.add_argument("--overwrite", action="store_true",
                        help="replace the runs of an earlier call (otherwise their folders are refused)")
    parser.add_argument("opts", nargs=argparse.REMAINDER, help="KEY VALUE overrides for every run")
    args = parser.parse_args(argv)
    base = setup_cfg(args.config_file, args.opts)
    variants = variant_overrides(base, [v for v in args.variants.split(",") if v])
    rows = []
    for name, overrides in variants.items():
        res = run_experiment(args.config_file, flatten_overrides(args.opts, overrides),
                             os.path.join(base.OUTPUT_DIR, name), args.overwrite)
        rows.append([name, res["mAP"], res["Rank-1"], res["cluster F"]])
    table = tabulate(rows, headers=["variant", "mAP", "Rank-1", "cluster F"], tablefmt="github", floatfmt=".2f")
    print(table)
    os.makedirs(base.OUTPUT_DIR, exist_ok=True)
    with open(os.path.join(base.OUTPUT_DIR, "ablation.md"), "w") as f:
        f.write(f"MTCluster ablation ({args.config_file} {' '.join(args.opts)})\n\n{table}\n")
    with open(os.path.join(base.OUTPUT_DIR, "ablation.json"), "w") as f:
        json.dump(dict(zip(variants, ({"mAP": r[1], "Rank-1": r[2], "cluster F": r[3]} for r in rows))), f)
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except OutputDirError as e:
        sys.exit(f"error: {e}")
