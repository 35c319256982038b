#!/usr/bin/env python
"""Export a trained model's test encoder to TorchScript and ONNX and check that both give the
PyTorch features (the same as ``unreidusl-export``; the code is ``unreidusl/apps/export.py``, the
guide docs/use_a_model.md).

    python tools/export.py --checkpoint output/synthetic/cluster_contrast/model_final.pth
"""
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # allow running from a checkout without installing
    sys.path.insert(0, str(ROOT))

from unreidusl.apps.export import build_parser, main  # noqa: E402, F401

if __name__ == "__main__":
    sys.exit(main())
