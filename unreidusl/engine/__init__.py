from .defaults import DefaultTrainer, default_argument_parser, default_setup, setup_cfg
from .hooks import (EvalHook, LRScheduler, PeriodicCheckpointer, PeriodicWriter, PseudoLabelError,
                    PseudoLabelHook)
from .train_loop import HOOK_REGISTRY, HookBase, SimpleTrainer, TrainerBase
from .curves_hook import CurvesHook  # noqa: E402 - registers CurvesHook in HOOK_REGISTRY
from .report_hook import ClusterReportHook  # noqa: E402 - registers ClusterReportHook

__all__ = [
    "DefaultTrainer", "default_argument_parser", "default_setup", "setup_cfg", "EvalHook",
    "LRScheduler", "PeriodicCheckpointer", "PeriodicWriter", "PseudoLabelError", "PseudoLabelHook",
    "HOOK_REGISTRY", "HookBase", "SimpleTrainer", "TrainerBase", "CurvesHook", "ClusterReportHook",
]
