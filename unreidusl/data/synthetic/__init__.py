"""Deterministic synthetic re-ID worlds written in the exact layouts of the real datasets.

>>> from unreidusl.data.synthetic import make_synthetic
>>> path = make_synthetic(root="datasets", fmt="market1501", seed=0, preset="small")

See ``world.py`` (simulation and time conventions), ``writers.py`` / ``writers_video.py``
(layouts), ``config.py`` (presets and difficulty knobs) and ``counts.py`` (the exact counts of the
full-size presets).  ``plan_synthetic`` / ``plan_counts`` give a dataset's files and sizes without
rendering anything.
"""
from .api import MARKER, META, make_synthetic, plan_counts, plan_synthetic, summarize
from .config import FORMAT_VERSION, FULL_PRESET_FORMATS, PRESETS, WorldConfig, resolve_config
from .world import World, build_world
from .writers import DATASET_DIRNAMES, FORMATS, get_layout

__all__ = [
    "make_synthetic", "plan_synthetic", "plan_counts", "summarize", "DATASET_DIRNAMES", "FORMATS",
    "WorldConfig", "PRESETS", "FULL_PRESET_FORMATS", "resolve_config", "build_world", "World",
    "get_layout", "FORMAT_VERSION", "MARKER", "META",
]
