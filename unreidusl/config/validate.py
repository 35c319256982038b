"""Value ranges of the numeric keys, checked when the config is set up, before any dataset is read
or any process is started: a wrong value stops with a ``ConfigError`` naming the key, the value and
what is allowed (the types are checked at merge time, ``config.py``)."""
from typing import Callable, Dict, Iterable, Tuple

from .config import ConfigError

__all__ = ["validate_cfg", "validate_world_size"]

_DEPTHS = (18, 34, 50, 101, 152)

# (predicate, what is allowed) per kind of key
_KINDS: Dict[str, Tuple[Callable[[float], bool], str]] = {
    "positive": (lambda v: v > 0, "> 0"),
    "non_negative": (lambda v: v >= 0, ">= 0"),
    "probability": (lambda v: 0 <= v <= 1, "in [0, 1]"),
    "fraction": (lambda v: 0 < v <= 1, "in (0, 1]"),
    "below_one": (lambda v: 0 <= v < 1, "in [0, 1)"),
    "above_one": (lambda v: v > 1, "> 1"),
    "at_least_one": (lambda v: v >= 1, ">= 1"),
}

_RULES: Dict[str, Iterable[str]] = {
    "positive": (
        "SOLVER.IMS_PER_BATCH", "SOLVER.MAX_EPOCHS", "SOLVER.ITERS_PER_EPOCH", "SOLVER.BASE_LR",
        "SOLVER.GAMMA", "DATALOADER.NUM_INSTANCES", "DATALOADER.TRAIN_SEQ_LEN",
        "DATALOADER.CLUSTER_SEQ_LEN", "DATALOADER.CLUSTER_SAMPLE_MULTI", "DATASETS.DENSE_STEP",
        "CLUSTER.IMS_PER_BATCH", "CLUSTER.MIN_SAMPLES", "CLUSTER.K1", "CLUSTER.K2", "CLUSTER.PERIOD",
        "CLUSTER.EPS", "CLUSTER.NUM_CLUSTERS", "CLUSTER.KMEANS_ITERS", "CLUSTER.EMPTY_MAX_RETRIES",
        "CLUSTER.HDC.MAX_ITER", "CLUSTER.HDC.EULER_ALPHA", "CLUSTER.HDC.CONFIDENCE_SCALE",
        "TEST.IMS_PER_BATCH", "TEST.MAX_RANK", "TEST.RERANK.K1", "TEST.RERANK.K2", "LOG.PERIOD",
        "MODEL.BN_VIRTUAL_SPLITS", "MODEL.HEADS.GEM_P", "MODEL.MEMORY.TEMP", "MODEL.MEMORY.NUM_MARGINAL",
        "MODEL.LOSSES.ID_K", "MODEL.LOSSES.LP.TEMP", "MODEL.ISE.TOPK", "MODEL.NCPLR.NEIGHBOR_TEMP",
        "MODEL.NCPLR.KL_TEMP", "CLUSTER.STS.BIN", "CLUSTER.ANN.NPROBE", "CLUSTER.ANN.HNSW_M",
        "CLUSTER.ANN.EF_SEARCH", "CLUSTER.ANN.EF_CONSTRUCTION",
    ),
    "non_negative": (
        "SEED", "DATALOADER.NUM_WORKERS", "DATALOADER.CLUSTER_BATCH_SIZE", "DATASETS.SYNTHETIC.SEED",
        "SOLVER.WEIGHT_DECAY", "SOLVER.WARMUP_EPOCHS", "SOLVER.FORWARD_BATCH_SIZE",
        "SOLVER.CHECKPOINT_PERIOD", "SOLVER.CHECKPOINT_ITER_PERIOD", "SOLVER.MAX_NONFINITE_SKIPS",
        "TEST.EVAL_PERIOD", "TEST.VISUALIZE.NUM_QUERIES", "INPUT.PADDING.SIZE",
        "CLUSTER.WARMUP_EPOCHS", "CLUSTER.RELIABILITY_EPS_GAP", "CLUSTER.HDC.MIN_ITER",
        "CLUSTER.HDC.PATIENCE", "CLUSTER.HDC.PROTECT", "CLUSTER.HDC.N_SIGMA",
        "CLUSTER.SCP.LAMBDA", "CLUSTER.STS.LAMBDA", "CLUSTER.STS.GAMMA", "CLUSTER.STS.SIGMA",
        "CLUSTER.STS.PRIOR", "TEST.SCP.LAMBDA", "TEST.STS.LAMBDA", "TEST.STS.GAMMA",
        "MODEL.HEADS.NUM_PARTS", "MODEL.NCPLR.CLASSIFIER_ROWS", "MODEL.NCPLR.NEIGHBOR_EPS",
        "MODEL.NCPLR.PART_NEIGHBOR_EPS", "MODEL.ISE.LAMBDA_BASE", "MODEL.ISE.LAMBDA_SCALE",
        "MODEL.LOSSES.TRI_MARGIN", "INPUT.CJ.BRIGHTNESS", "INPUT.CJ.CONTRAST", "INPUT.CJ.SATURATION",
        "CLUSTER.ANN.NLIST", "CLUSTER.ANN.PCA_DIM", "CLUSTER.ANN.AUTO_ABOVE", "CLUSTER.ANN.RECALL_QUERIES",
    ),
    "probability": (
        "INPUT.FLIP.PROB", "INPUT.CJ.PROB", "INPUT.REA.PROB", "MODEL.MEMORY.OLD_WEIGHT",
        "MEAN_TEACHER.ALPHA", "MODEL.NCPLR.ALPHA", "MODEL.NCPLR.PART_ALPHA",
        "MODEL.NCPLR.PART_LOSS_WEIGHT", "MODEL.MEMORY.RELIABILITY_RATIO",
        "MODEL.LOSSES.CENTER_MARGIN.HARD_WEIGHT", "TEST.RERANK.LAMBDA", "CLUSTER.PART_WEIGHT",
        "INPUT.CJ.HUE",
    ),
    "fraction": ("SOLVER.WARMUP_FACTOR", "CLUSTER.ADAPTIVE_RHO"),
    "below_one": ("MODEL.LOSSES.CE.EPSILON", "MODEL.LOSSES.CENTER_MARGIN.EPSILON", "SOLVER.MOMENTUM"),
    "above_one": ("CLUSTER.EMPTY_EPS_FACTOR",),
    "at_least_one": ("CLUSTER.ANN.REFINE",),
}


def _get(cfg, key: str):
    node = cfg
    for part in key.split("."):
        node = node[part]
    return node


def _fail(key: str, value, allowed: str) -> ConfigError:
    return ConfigError(f"{key} = {value!r} is out of range: it must be {allowed}")


def validate_cfg(cfg) -> None:
    """Raise ``ConfigError`` for the first out-of-range value (module docstring)."""
    for kind, keys in _RULES.items():
        ok, allowed = _KINDS[kind]
        for key in keys:
            value = _get(cfg, key)
            if isinstance(value, bool) or not ok(value):
                raise _fail(key, value, allowed)
    for key in ("INPUT.SIZE_TRAIN", "INPUT.SIZE_TEST"):
        size = list(_get(cfg, key))
        if len(size) != 2 or not all(isinstance(v, int) and v > 0 for v in size):
            raise _fail(key, size, "[height, width], two positive integers")
    steps = list(cfg.SOLVER.STEPS)
    if not all(isinstance(v, int) and v > 0 for v in steps):
        raise _fail("SOLVER.STEPS", steps, "a list of positive epoch numbers")
    b = cfg.MODEL.BACKBONE
    if b.NAME == "ResNet" and b.DEPTH not in _DEPTHS:
        raise _fail("MODEL.BACKBONE.DEPTH", b.DEPTH, f"one of {_DEPTHS}")
    if b.LAST_STRIDE not in (1, 2):
        raise _fail("MODEL.BACKBONE.LAST_STRIDE", b.LAST_STRIDE, "1 or 2")
    from ..cluster.knn import BACKENDS  # noqa: PLC0415 - the config package stays import-light

    for key in ("CLUSTER.KNN_BACKEND", "TEST.RERANK.KNN_BACKEND"):
        if _get(cfg, key) not in BACKENDS:
            raise _fail(key, _get(cfg, key), f"one of {', '.join(BACKENDS)}")
    if cfg.CLUSTER.K2 > cfg.CLUSTER.K1 + 1:
        raise _fail("CLUSTER.K2", cfg.CLUSTER.K2, f"<= CLUSTER.K1 + 1 = {cfg.CLUSTER.K1 + 1} (it averages "
                    f"over the nearest neighbours)")
    validate_world_size(cfg, 1)


def validate_world_size(cfg, world: int) -> None:
    """The batch splits into ``world`` processes of P×K samples (DATALOADER.NUM_INSTANCES per
    pseudo-identity), each divisible into MODEL.BN_VIRTUAL_SPLITS BatchNorm chunks."""
    total, k, splits = cfg.SOLVER.IMS_PER_BATCH, cfg.DATALOADER.NUM_INSTANCES, cfg.MODEL.BN_VIRTUAL_SPLITS
    if total % world:
        raise ConfigError(f"SOLVER.IMS_PER_BATCH = {total} does not split over {world} processes: use a "
                          f"multiple of {world}")
    per = total // world
    procs = f" per process ({world} processes)" if world > 1 else ""
    if per % k:
        raise ConfigError(f"SOLVER.IMS_PER_BATCH = {total} gives {per} samples{procs}, not a multiple of "
                          f"DATALOADER.NUM_INSTANCES = {k} (the sampler draws K samples per "
                          f"pseudo-identity): use a multiple of {k * world}")
    if per % splits:
        raise ConfigError(f"SOLVER.IMS_PER_BATCH = {total} gives {per} samples{procs}, not a multiple of "
                          f"MODEL.BN_VIRTUAL_SPLITS = {splits}")
