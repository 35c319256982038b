import os
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)


@pytest.fixture(scope="session")
def tiny_root(tmp_path_factory):
    """A DATASETS.ROOT holding the tiny synthetic Market-1501 twin (generated once per session)."""
    from unreidusl.data.synthetic import make_synthetic

    root = tmp_path_factory.mktemp("datasets")
    make_synthetic(root=str(root / "synthetic" / "tiny-seed0"), fmt="market1501", seed=0, preset="tiny")
    return str(root)


def tiny_opts(root, output_dir, **extra):
    """Command-line overrides for a seconds-long CPU run on the tiny synthetic world."""
    opts = {
        "DATASETS.ROOT": root,
        "DATASETS.TRAIN": "SyntheticMarket1501",
        "DATASETS.TEST": "SyntheticMarket1501",
        "DATASETS.SYNTHETIC.PRESET": "tiny",
        "MODEL.BACKBONE.DEPTH": 18,
        "MODEL.BACKBONE.LAST_STRIDE": 2,
        "INPUT.SIZE_TRAIN": "[64,32]",
        "INPUT.SIZE_TEST": "[64,32]",
        "DATALOADER.NUM_WORKERS": 0,
        "DATALOADER.NUM_INSTANCES": 4,
        "SOLVER.IMS_PER_BATCH": 16,
        "SOLVER.ITERS_PER_EPOCH": 2,
        "SOLVER.MAX_EPOCHS": 2,
        "CLUSTER.EPS": 0.7,
        "CLUSTER.K1": 10,
        "CLUSTER.K2": 3,
        "CLUSTER.MIN_SAMPLES": 2,
        "TEST.EVAL_AT_START": False,
        "LOG.TENSORBOARD": False,
        "OUTPUT_DIR": str(output_dir),
    }
    opts.update(extra)
    flat = []
    for k, v in opts.items():
        flat += [k, str(v)]
    return flat


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
