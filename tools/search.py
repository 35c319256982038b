#!/usr/bin/env python
"""Index a collection with a trained model and answer queries (the same as ``unreidusl-search``;
the code is ``unreidusl/apps/search.py``, the guide docs/use_a_model.md).

    python tools/search.py --checkpoint output/synthetic/cluster_contrast/model_final.pth \
        --gallery dataset:gallery --query dataset:query --output output/search
"""
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # allow running from a checkout without installing
    sys.path.insert(0, str(ROOT))

from unreidusl.apps.search import build_parser, main  # noqa: E402, F401

if __name__ == "__main__":
    sys.exit(main())
