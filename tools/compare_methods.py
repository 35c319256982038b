#!/usr/bin/env python
"""Every method on the synthetic image world under one budget, next to its published numbers.

    python tools/compare_methods.py [--methods cluster_contrast,ise,...] [KEY VALUE ...]

Trains ``configs/Synthetic/<method>.yml`` for each method with the training budget of
``configs/Synthetic/cluster_contrast.yml`` forced on all of them (epochs, iterations per epoch,
batch size, backbone depth, input size), each into ``OUTPUT_DIR/<method>/``, and writes the table
(published Market-1501 / MSMT17 mAP (R1) of the paper's ResNet-50 runs; our initial and final
synthetic mAP, final Rank-1, last pseudo-label pairwise F, minutes) to ``OUTPUT_DIR/methods.md``
and ``methods.json``. ``KEY VALUE`` overrides apply to every run (after the budget).
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

CONFIG_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "configs", "Synthetic")
REFERENCE = "cluster_contrast"
BUDGET_KEYS = ("SOLVER.MAX_EPOCHS", "SOLVER.ITERS_PER_EPOCH", "SOLVER.IMS_PER_BATCH",
               "MODEL.BACKBONE.DEPTH", "INPUT.SIZE_TRAIN", "INPUT.SIZE_TEST", "DATASETS.SYNTHETIC.PRESET")

# method -> (display name, published Market-1501 mAP (R1), published MSMT17 mAP (R1)); the numbers
# are the README claims of the methods' released code with ResNet-50 (3C: its HDC row).
METHODS: Dict[str, tuple] = {
    "cluster_contrast": ("Cluster Contrast (DBSCAN)", "82.1 (92.3)", "27.6 (56.0)"),
    "ise": ("ISE", "84.7 (94.0)", "35.0 (64.8)"),
    "gl_ncplr": ("CC + GL-NCPLR", "86.9 (94.6)", "41.7 (70.0)"),
    "3c": ("3C (HDC)", "86.7 (94.7)", "45.3 (73.1)"),
    "cdsm": ("CDSM", "85.6 (93.9)", "31.0 (61.1)"),
}


def config_path(method: str) -> str:
    return os.path.normpath(os.path.join(CONFIG_DIR, f"{method}.yml"))


def budget_overrides() -> Dict[str, object]:
    """The reference config's values of ``BUDGET_KEYS``."""
    cfg = setup_cfg(config_path(REFERENCE))
    out = {}
    for key in BUDGET_KEYS:
        node = cfg
        for part in key.split("."):
            node = node[part]
        out[key] = list(node) if isinstance(node, (list, tuple)) else node
    return out


def main(argv: List[str] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--methods", default=",".join(METHODS), help=f"comma-separated subset of {list(METHODS)}")
    parser.add_argument("--output-dir", default="output/compare_methods")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace the runs of an earlier call (otherwise their folders are refused)")
    parser.add_argument("opts", nargs=argparse.REMAINDER, help="KEY VALUE overrides for every run")
    args = parser.parse_args(argv)
    methods = [m for m in args.methods.split(",") if m]
    unknown = [m for m in methods if m not in METHODS]
    missing = [config_path(m) for m in methods if m in METHODS and not os.path.isfile(config_path(m))]
    if unknown or missing:
        raise SystemExit(f"error: unknown methods {unknown} (choose from {list(METHODS)})" if unknown
                         else f"error: missing method configs {missing}")
    budget = budget_overrides()
    print("Budget for every method: " + ", ".join(f"{k}={v}" for k, v in budget.items()))
    rows, results = [], {}
    for method in methods:
        opts = flatten_overrides([], budget) + list(args.opts)
        res = run_experiment(config_path(method), opts, os.path.join(args.output_dir, method), args.overwrite)
        results[method] = res
        name, market, msmt = METHODS[method]
        rows.append([name, market, msmt, res["initial mAP"], res["mAP"], res["Rank-1"], res["cluster F"],
                     res["minutes"]])
    headers = ["method", "published Market-1501 mAP (R1)", "published MSMT17 mAP (R1)", "synthetic initial mAP",
               "synthetic mAP", "synthetic Rank-1", "cluster F", "minutes"]
    table = tabulate(rows, headers=headers, tablefmt="github", floatfmt=".2f")
    print(table)
    os.makedirs(args.output_dir, exist_ok=True)
    with open(os.path.join(args.output_dir, "methods.md"), "w") as f:
        f.write(f"Methods on the synthetic image world ({', '.join(f'{k} {v}' for k, v in budget.items())}"
                f"{' ' + ' '.join(args.opts) if args.opts else ''})\n\n{table}\n")
    with open(os.path.join(args.output_dir, "methods.json"), "w") as f:
        json.dump(results, f, indent=1)
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except OutputDirError as e:
        sys.exit(f"error: {e}")
