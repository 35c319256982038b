"""Seeding, determinism and plugin import."""
import hashlib
import importlib
import importlib.util
import logging
import os
import random
import sys
from types import ModuleType
from typing import Iterable, List

import numpy as np
import torch

logger = logging.getLogger(__name__)


def seed_all(seed: int) -> None:
    """Seed python, numpy and torch (all devices)."""
    seed = int(seed) % 2**32
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def epoch_seed(seed: int, epoch: int) -> int:
    """A per-epoch seed, so that a resumed epoch draws exactly what the uninterrupted one drew."""
    return int(np.random.SeedSequence([seed, epoch]).generate_state(1)[0])


def set_deterministic(enabled: bool) -> None:
    torch.backends.cudnn.deterministic = enabled
    torch.backends.cudnn.benchmark = not enabled
    torch.use_deterministic_algorithms(enabled, warn_only=True)
    if enabled:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")


def import_plugin(spec: str) -> ModuleType:
    """Import a plugin given as a dotted module name or a path to a ``.py`` file."""
    if spec.endswith(".py") or os.sep in spec:
        path = os.path.abspath(spec)
        if not os.path.isfile(path):
            raise ImportError(f"PLUGINS entry '{spec}': file {path} does not exist")
        name = "unreidusl_plugin_" + hashlib.sha1(path.encode()).hexdigest()[:12]
        if name in sys.modules:
            return sys.modules[name]
        module_spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(module_spec)
        sys.modules[name] = module
        try:
            module_spec.loader.exec_module(module)
        except Exception:
            del sys.modules[name]
            raise
        return module
    try:
        return importlib.import_module(spec)
    except ModuleNotFoundError as e:
        raise ImportError(
            f"PLUGINS entry '{spec}' cannot be imported ({e}). Give an importable module name "
            f"(on PYTHONPATH) or a path to a .py file."
        ) from e


def import_plugins(specs: Iterable[str]) -> List[ModuleType]:
    modules = []
    for spec in specs:
        modules.append(import_plugin(spec))
        logger.info("Imported plugin %s", spec)
    return modules
