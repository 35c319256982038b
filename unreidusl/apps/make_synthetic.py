"""Generate a deterministic synthetic re-ID dataset in the layout of a real one
(``unreidusl-make-synthetic``, ``tools/make_synthetic.py``).

    unreidusl-make-synthetic --format market1501 --root datasets --seed 0 --preset small
    unreidusl-make-synthetic --format all --preset tiny --set num_cameras=5 --overwrite
    unreidusl-make-synthetic --format market1501 --baseline   # + colour-histogram mAP

Re-running with the same parameters returns at once; different parameters need --overwrite.
Frame numbers in file names are world frames at 25 fps (see unreidusl/data/synthetic/world.py).
"""
from __future__ import annotations

import argparse
import sys
import time

from ..data.synthetic import FORMATS, PRESETS, make_synthetic, summarize
from ..data.synthetic.config import parse_set_args

__all__ = ["build_parser", "main"]


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--format", default="market1501", choices=list(FORMATS) + ["all"])
    p.add_argument("--root", default="datasets", help="parent folder of the dataset folder")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--preset", default="small", choices=sorted(PRESETS))
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a WorldConfig field, e.g. --set num_train_ids=30 "
                        "--set image_size=[128,64] (repeatable)")
    p.add_argument("--overwrite", action="store_true", help="regenerate and replace an existing dataset folder")
    p.add_argument("--workers", type=int, default=None,
                   help="rendering processes (never changes the output)")
    p.add_argument("--baseline", action="store_true",
                   help="also report the colour-histogram mAP (image layouts only)")
    return p


def main(argv=None) -> int:
    from ..utils.logger import setup_logger  # noqa: PLC0415

    args = build_parser().parse_args(argv)
    setup_logger()  # the console: periodic progress lines when not on a terminal
    try:
        overrides = parse_set_args(args.overrides)
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    formats = list(FORMATS) if args.format == "all" else [args.format]
    for fmt in formats:
        t0 = time.time()
        try:
            path = make_synthetic(root=args.root, fmt=fmt, seed=args.seed, preset=args.preset,
                                  overwrite=args.overwrite, workers=args.workers, **overrides)
        except (FileExistsError, ValueError, TypeError) as e:
            print(f"error: {e}", file=sys.stderr)
            return 1
        print(f"{fmt}: {path}  ({time.time() - t0:.1f} s)")
        for split, s in summarize(path).items():
            extra = ""
            if s["distractor_images"] or s["junk_images"]:
                extra = f", {s['distractor_images']} distractor (pid 0), {s['junk_images']} junk (pid -1)"
            print(f"  {split:<8} {s['ids']:>5} ids {s['tracklets']:>6} tracklets "
                  f"{s['images']:>7} images {s['cams']:>3} cameras{extra}")
        if args.baseline and fmt not in ("dukemtmc-videoreid", "mars"):
            from ..data.synthetic.baseline import image_layout_baseline  # noqa: PLC0415

            m = image_layout_baseline(path)
            print(f"  colour-histogram baseline: mAP {100 * m['mAP']:.1f}%  "
                  f"rank-1 {100 * m['rank1']:.1f}%  ({m['num_queries']} queries)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
