"""Run one training from a config file and return its headline numbers (used by the table tools)."""
import gc
import time
from typing import Dict, List, Optional

from .defaults import DefaultTrainer, default_setup, setup_cfg

__all__ = ["run_experiment", "flatten_overrides"]


def flatten_overrides(opts: List[str], overrides: Optional[Dict] = None) -> List[str]:
    """``opts`` followed by ``KEY VALUE`` pairs of ``overrides`` (later pairs win)."""
    flat = list(opts)
    for key, value in (overrides or {}).items():
        flat += [key, str(value)]
    return flat


def run_experiment(config_file: str, opts: List[str], output_dir: str,
                   overwrite: bool = False) -> Dict[str, float]:
    """Train ``config_file`` with ``opts`` into ``output_dir`` (an earlier run there is refused
    with ``run_dir.OutputDirError`` unless ``overwrite``).

    Returns the final test ``mAP`` and ``Rank-1``, the initial model's ``initial mAP`` (NaN when
    ``TEST.EVAL_AT_START`` is off), the last clustering's pairwise ``cluster F`` (NaN without ground
    truth) and the wall time in ``minutes``.
    """
    start = time.perf_counter()
    cfg = setup_cfg(config_file, list(opts) + ["OUTPUT_DIR", output_dir])
    default_setup(cfg, overwrite=overwrite)
    trainer = DefaultTrainer(cfg)
    trainer.train()
    history = next(h for h in trainer.hooks if type(h).__name__ == "EvalHook").history
    initial = next((h["mAP"] for h in history if h.get("epoch") == 0), float("nan"))
    f = trainer.storage.latest().get("cluster/pairwise_f")
    result = {"initial mAP": initial, "mAP": history[-1]["mAP"], "Rank-1": history[-1]["Rank-1"],
              "cluster F": f[0] if f else float("nan"), "minutes": (time.perf_counter() - start) / 60}
    del trainer
    gc.collect()
    return result
