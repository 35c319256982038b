#!/usr/bin/env python
"""Train or evaluate an unsupervised re-ID model (the same as the ``unreidusl-train`` command;
the code is ``unreidusl/apps/train.py``).

    python tools/main.py --config-file configs/Synthetic/cluster_contrast.yml [--resume] [KEY VALUE ...]
    python tools/main.py --config-file F TEST.EVAL_ONLY True MODEL.WEIGHTS output/x/model_final.pth
    python tools/main.py --num-gpus 4 --config-file F              # 4 processes on this machine
    torchrun --nproc-per-node 4 tools/main.py --config-file F      # the same, started by torchrun
"""
import sys

from unreidusl.apps.train import USER_ERRORS, main, run, worker_main  # noqa: F401

if __name__ == "__main__":
    sys.exit(main())
