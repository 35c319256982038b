"""AuxUSLReID's original config keys, translated to unreidusl's.

Keys that unreidusl names the same way need no entry. ``RENAMED`` keys move to their new name,
``TRANSLATED`` keys set one or more keys from their value, and ``DEAD`` keys had no effect in the
reference (or have none here): they are accepted and a warning says why they are ignored.
"""
import logging
from typing import Any, Callable, Dict, List, Tuple

from yacs.config import CfgNode as _YacsCfgNode

logger = logging.getLogger(__name__)

RENAMED: Dict[str, str] = {
    "MUTUAL_TEACH.ALPHA": "MEAN_TEACHER.ALPHA",
    "CLUSTER.ICDBSCAN_OPTION": "CLUSTER.TOC.ENABLED",
    "CLUSTER.ICDBSCAN_RELAXED": "CLUSTER.TOC.RELAXED",
    "CLUSTER.CCE_OPTION": "CLUSTER.SCP.ENABLED",
    "CLUSTER.CCE_LAMBDA": "CLUSTER.SCP.LAMBDA",
    "CLUSTER.STR_OPTION": "CLUSTER.STS.ENABLED",
    "CLUSTER.STR_LAMBDA": "CLUSTER.STS.LAMBDA",
    "CLUSTER.STR_GAMMA": "CLUSTER.STS.GAMMA",
    "TEST.OVERLAP_CONSTRAINT": "TEST.TOC.ENABLED",
    "TEST.CCE_OPTION": "TEST.SCP.ENABLED",
    "TEST.CCE_LAMBDA": "TEST.SCP.LAMBDA",
    "TEST.STR_OPTION": "TEST.STS.ENABLED",
    "INPUT.DO_FLIP": "INPUT.FLIP.ENABLED",
    "INPUT.FLIP_PROB": "INPUT.FLIP.PROB",
    "INPUT.DO_PAD": "INPUT.PADDING.ENABLED",
    "INPUT.PADDING_MODE": "INPUT.PADDING.MODE",
    "INPUT.PADDING": "INPUT.PADDING.SIZE",
    "INPUT.REA.MEAN": "INPUT.REA.VALUE",
    "DATASETS.DIR": "DATASETS.ROOT",
    "DATALOADER.NUM_INSTANCE": "DATALOADER.NUM_INSTANCES",
    "DATALOADER.TRAIN_BATCH_SIZE": "SOLVER.IMS_PER_BATCH",
    "DATALOADER.ITERS": "SOLVER.ITERS_PER_EPOCH",
    "OPTIM.LR": "SOLVER.BASE_LR",
    "OPTIM.WEIGHT_DECAY": "SOLVER.WEIGHT_DECAY",
    "OPTIM.MOMENTUM": "SOLVER.MOMENTUM",
    "OPTIM.GAMMA": "SOLVER.GAMMA",
    "OPTIM.STEPS": "SOLVER.STEPS",
    "OPTIM.EPOCHS": "SOLVER.MAX_EPOCHS",
    "OPTIM.FORWARD_BATCH_SIZE": "SOLVER.FORWARD_BATCH_SIZE",
    "PRINT_PERIOD": "LOG.PERIOD",
}

DEAD: Dict[str, str] = {
    "MODEL.BACKBONE.FEAT_DIM": "the feature size follows MODEL.BACKBONE.DEPTH",
    "MODEL.HYBRIDMEMORY.TEMP": "the reference never used its HybridMemory",
    "MODEL.HYBRIDMEMORY.MOMENTUM": "the reference never used its HybridMemory",
    "DATASETS.SOURCE": "unused by the reference",
    "DATASETS.NAME": "datasets are read from their official folder names under DATASETS.ROOT",
    "DATASETS.DUKE_INFO": "the DukeMTMC-Track variant is not supported",
    "DATALOADER.ITER_MODE": "training is always iteration-based",
    "DATALOADER.SAMPLE_CONSTRAINT": "not supported yet",
    "DATALOADER.SAMPLE_CONSTRAINT_EXT_SIZE": "not supported yet",
    "OPTIM.SGD_DAMPENING": "not supported",
    "OPTIM.SGD_NESTEROV": "not supported",
    "OPTIM.RMSPROP_ALPHA": "rmsprop is not supported",
    "OPTIM.ADAM_BETA1": "Adam uses torch's default betas (0.9, 0.999), the reference's defaults",
    "OPTIM.ADAM_BETA2": "Adam uses torch's default betas (0.9, 0.999), the reference's defaults",
    "OPTIM.COSINE_MAX_EPOCH": "the reference never built its scheduler; see SOLVER.SCHED",
    "OPTIM.WARMUP_ITERS": "the reference never built its scheduler; see SOLVER.SCHED",
    "OPTIM.WARMUP_FACTOR": "the reference never built its scheduler; see SOLVER.SCHED",
    "OPTIM.WARMUP_METHOD": "the reference never built its scheduler; see SOLVER.SCHED",
    "TEST.PRINT_PERIOD": "feature extraction logs one line per pass",
    "GPU_Device": "choose GPUs with CUDA_VISIBLE_DEVICES (and torchrun for several)",
    "CUDNN_BENCHMARK": "cuDNN autotuning follows DETERMINISTIC",
    "CHECKPOING.REMAIN_CLASSIFIER": "checkpoints always hold the full model",
    "CHECKPOING.PRETRAIN_PATH": "unused by the reference; see MODEL.BACKBONE.PRETRAIN_PATH",
    "PICKLE_PATH": "auxiliary files are mined into .npz; see AUX.PATH",
    "CLUSTER.ICDBSCAN_CONSTRAINT_PATH": "auxiliary files are mined into .npz; see AUX.PATH",
    "CLUSTER.CCE_PATH": "auxiliary files are mined into .npz; see AUX.PATH",
    "CLUSTER.STR_PATH": "auxiliary files are mined into .npz; see AUX.PATH",
    "TEST.CONSTRAINT_PATH": "auxiliary files are mined into .npz; see AUX.PATH",
    "TEST.CCE_PATH": "auxiliary files are mined into .npz; see AUX.PATH",
    "TEST.STR_PATH": "auxiliary files are mined into .npz; see AUX.PATH",
}


def _choice(key: str, table: Dict[Any, Dict[str, Any]]) -> Callable[[Any], Dict[str, Any]]:
    def translate(value):
        if value not in table:
            raise ValueError(f"{key}: value {value!r} is not supported; use one of {sorted(table)}")
        return table[value]
    return translate


def _save_step(value) -> Dict[str, Any]:
    """[-n]: every n-th epoch; [0]: every epoch; [e1, e2, ...]: every e1-th epoch (approximation)."""
    first = int(value[0]) if value else 0
    period = abs(first) if first else 1
    return {"TEST.EVAL_PERIOD": period, "SOLVER.CHECKPOINT_PERIOD": period}


TRANSLATED: Dict[str, Callable[[Any], Dict[str, Any]]] = {
    "MODE": _choice("MODE", {"usl_MTCluster_base": {"MODEL.META_ARCHITECTURE": "MTCluster"}}),
    "MODEL.ARCH": _choice("MODEL.ARCH", {"resnet50bnn": {
        "MODEL.BACKBONE.DEPTH": 50, "MODEL.BACKBONE.LAST_STRIDE": 2, "MODEL.HEADS.POOLING": "avg"}}),
    "DATASETS.TARGET": _choice("DATASETS.TARGET", {
        "mars": {"DATASETS.TRAIN": "MARS", "DATASETS.TEST": "MARS"},
        "duke": {"DATASETS.TRAIN": "DukeMTMCVideoReID", "DATASETS.TEST": "DukeMTMCVideoReID"}}),
    "OPTIM.OPT": _choice("OPTIM.OPT", {"adam": {"SOLVER.OPTIMIZER": "Adam"}, "sgd": {"SOLVER.OPTIMIZER": "SGD"}}),
    "OPTIM.SCHED": _choice("OPTIM.SCHED", {"single_step": {"SOLVER.SCHED": "MultiStepLR"}}),
    "CHECKPOING.SAVE_STEP": _save_step,
    "RESUME": lambda value: {"MODEL.WEIGHTS": value},
}


# MTCluster's loss set in AuxUSLReID's keys: four slots (identity loss, triplet, soft CE, soft
# triplet) weighted 1 − w_ce, 1 − w_tri, w_ce, w_tri. ID_OPTION / TRI_OPTION choose the first two,
# CE_SOFT_WRIGHT (w_ce) / TRI_SOFT_WRIGHT (w_tri) the weights; the defaults are ID_OPTION 3,
# TRI_OPTION 2, w_ce 0.5, w_tri 0.8.
ID_LOSSES = {1: "CrossEntropyLoss", 2: "LabelSmoothingCrossEntropy", 3: "RestrictedLabelSmoothingCrossEntropy"}
TRI_LOSSES = {1: "SoftMarginTripletLoss", 2: "WeightAdaptiveTripletLoss"}
MEAN_TEACHER_LOSSES = (("RestrictedLabelSmoothingCrossEntropy", 1 - 0.5), ("WeightAdaptiveTripletLoss", 1 - 0.8),
                       ("SoftCrossEntropyLoss", 0.5), ("SoftTripletLoss", 0.8))
LOSS_OPTIONS = ("MODEL.LOSSES.ID_OPTION", "MODEL.LOSSES.TRI_OPTION", "MUTUAL_TEACH.CE_SOFT_WRIGHT",
                "MUTUAL_TEACH.TRI_SOFT_WRIGHT")


def _mean_teacher_loss_set(options: Dict[str, Any], names: List[str], weights: List[float],
                           source: str) -> Dict[str, Any]:
    """MODEL.LOSSES.NAME / WEIGHTS from the AuxUSLReID loss keys in ``options``, applied to the
    current four-slot set ``names`` / ``weights`` (the defaults when the current set is not one)."""
    if len(names) == 4 and names[2:] == ["SoftCrossEntropyLoss", "SoftTripletLoss"]:
        names, weights = list(names), list(weights) or [1.0] * 4
    else:
        names = [n for n, _ in MEAN_TEACHER_LOSSES]
        weights = [w for _, w in MEAN_TEACHER_LOSSES]
    for key, value in options.items():
        if isinstance(value, str):                          # a command-line value
            value = _YacsCfgNode._decode_cfg_value(value)
        table = ID_LOSSES if key.endswith("ID_OPTION") else TRI_LOSSES if key.endswith("TRI_OPTION") else None
        if table is not None:
            if value not in table:
                from .config import ConfigError

                raise ConfigError(f"{key}: value {value!r} (from {source}) is not supported; use one of "
                                  f"{sorted(table)}")
            names[0 if table is ID_LOSSES else 1] = table[value]
        else:
            slot = 0 if key.endswith("CE_SOFT_WRIGHT") else 1
            weights[slot], weights[slot + 2] = 1 - float(value), float(value)
    return {"MODEL.LOSSES.NAME": names, "MODEL.LOSSES.WEIGHTS": weights}


def translate_legacy_keys(flat: Dict[str, Any], source: str, current_losses=((), ())
                          ) -> Tuple[Dict[str, Any], List[str]]:
    """Return ``flat`` (dotted key → value) with AuxUSLReID keys translated, and the warnings given.
    Keys unknown to both schemas pass through unchanged (validation reports them later).
    ``current_losses``: the config's MODEL.LOSSES.NAME and WEIGHTS before this merge, which the
    loss keys (``LOSS_OPTIONS``) edit."""
    out: Dict[str, Any] = {}
    warnings: List[str] = []
    options = {k: flat[k] for k in LOSS_OPTIONS if k in flat}
    if options:
        out.update(_mean_teacher_loss_set(options, list(current_losses[0]), list(current_losses[1]), source))
    for key, value in flat.items():
        if key in options:
            continue
        if key in DEAD:
            warnings.append(f"{key} (from {source}) is ignored: {DEAD[key]}.")
        elif key in RENAMED:
            out[RENAMED[key]] = value
        elif key in TRANSLATED:
            try:
                out.update(TRANSLATED[key](value))
            except ValueError as e:
                from .config import ConfigError

                raise ConfigError(f"{e} (from {source})") from e
        else:
            out[key] = value
    for w in warnings:
        logger.warning(w)
    return out, warnings
