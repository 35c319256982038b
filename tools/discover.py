#!/usr/bin/env python
"""Identity discovery: the toolkit's pseudo-labelling on a collection with a trained model, written
as clusters.csv and an HTML report (the same as ``unreidusl-discover``; the code is
``unreidusl/apps/discover.py``, the guide docs/use_a_model.md).

    python tools/discover.py --checkpoint output/synthetic/cluster_contrast/model_final.pth
"""
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # allow running from a checkout without installing
    sys.path.insert(0, str(ROOT))

from unreidusl.apps.discover import build_parser, main  # noqa: E402, F401

if __name__ == "__main__":
    sys.exit(main())
