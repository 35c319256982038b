"""Fixtures of the whole suite.  Non-fixture helpers (ROOT, tiny_opts, main, ...) are in
tests/helpers.py: tests import them with ``from helpers import ...``."""
import hashlib
import os
import random
import sys

import numpy as np
import pytest
import torch

TESTS = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(TESTS)
# tests/ first (``from helpers import ...`` from any subfolder, whichever folder or file is run), then
# the repository root (``tools/`` scripts and ``docs/examples`` plugins import ``unreidusl``).
for _path in (ROOT, TESTS):
    if _path not in sys.path:
        sys.path.insert(0, _path)


@pytest.fixture(scope="session")
def tiny_root(tmp_path_factory):
    """A DATASETS.ROOT holding the tiny synthetic Market-1501 twin (generated once per session)."""
    from unreidusl.data.synthetic import make_synthetic

    root = tmp_path_factory.mktemp("datasets")
    make_synthetic(root=str(root / "synthetic" / "tiny-seed0"), fmt="market1501", seed=0, preset="tiny")
    return str(root)


@pytest.fixture(autouse=True)
def _restore_logging():
    """``default_setup`` gives the 'unreidusl' logger its own handlers and stops propagation, and
    locks OUTPUT_DIR for the life of the process; undo both after each test so later tests'
    ``caplog`` still sees records and a later test may reuse the folder."""
    import logging

    from unreidusl.engine.run_dir import release_output_dirs

    yield
    release_output_dirs()
    logger = logging.getLogger("unreidusl")
    for h in list(logger.handlers):
        logger.removeHandler(h)
        h.close()
    logger.propagate = True


SEED = 0


@pytest.fixture(autouse=True)
def _seed_rngs(request):
    """Seed ``random``, ``numpy.random`` and ``torch`` before every test, from the test's node id:
    a test draws the same numbers whichever tests ran before it (any order, any subset)."""
    digest = hashlib.sha256(f"{SEED}:{request.node.nodeid}".encode()).digest()
    seed = int.from_bytes(digest[:4], "little")
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)  # also seeds every CUDA device
    yield


@pytest.fixture(scope="session")
def trained_run(tiny_root, tmp_path_factory):
    """A finished 2-epoch training run on the tiny synthetic Market twin (checkpoint every epoch,
    evaluation before training, adaptive eps frozen at the first clustering, the training-curve and
    cluster-report hooks on), shared by the tests of the applications and of those hooks:
    ``{"root", "dir", "checkpoints": [model_0001.pth, model_final.pth]}``."""
    from helpers import main, tiny_opts

    out = tmp_path_factory.mktemp("trained") / "run"
    opts = tiny_opts(tiny_root, out, **{
        "SOLVER.MAX_EPOCHS": 2, "SOLVER.CHECKPOINT_PERIOD": 1, "TEST.EVAL_AT_START": True,
        "CLUSTER.ADAPTIVE": True, "CLUSTER.ADAPTIVE_RHO": 0.03, "CLUSTER.REPORT": True})
    assert main(opts) == 0
    return {"root": tiny_root, "dir": str(out),
            "checkpoints": [str(out / "model_0001.pth"), str(out / "model_final.pth")]}
