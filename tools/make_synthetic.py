#!/usr/bin/env python
"""Generate a deterministic synthetic re-ID dataset in the layout of a real one (the same as the
``unreidusl-make-synthetic`` command; the code is ``unreidusl/apps/make_synthetic.py``).

    python tools/make_synthetic.py --format market1501 --root datasets --seed 0 --preset small
    python tools/make_synthetic.py --format all --preset tiny --set num_cameras=5 --overwrite
    python tools/make_synthetic.py --format market1501 --baseline   # + colour-histogram mAP

Re-running with the same parameters returns at once; different parameters need --overwrite.
"""
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # allow running from a checkout without installing
    sys.path.insert(0, str(ROOT))

from unreidusl.apps.make_synthetic import build_parser, main  # noqa: E402, F401

if __name__ == "__main__":
    sys.exit(main())
