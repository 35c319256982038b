"""Cached dataset splits, kept outside the dataset folder and invalidated when the folder changes.

A cache file lives in ``DATASETS.CACHE_DIR`` (default ``$XDG_CACHE_HOME/unreidusl/splits`` or
``~/.cache/unreidusl/splits``), so read-only dataset folders work.  Its name is derived from the
reader and the dataset folder's real path; its content stores a *fingerprint* of the folder
(names and modification times of the directories that hold the frames), the reader's version and
its options.  Any added, removed or renamed file changes its directory's modification time and so
the fingerprint: the split is then re-read and the cache rewritten.  Paths are stored relative to
the dataset folder.  A cache that cannot be written only logs a warning.
"""
import hashlib
import json
import logging
import os
import tempfile
from typing import Any, Iterable, Optional, Tuple

logger = logging.getLogger(__name__)


def default_cache_dir() -> str:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "unreidusl", "splits")


def cache_dir_from_cfg(cfg) -> Optional[str]:
    """The cache folder of ``cfg`` or None when caching is off."""
    if cfg is None:
        return default_cache_dir()
    d = cfg.DATASETS
    if not d.USE_CACHE:
        return None
    return d.CACHE_DIR or default_cache_dir()


def fingerprint(entries: Iterable[Tuple[str, int]]) -> str:
    """sha1 over (relative path, mtime_ns) pairs."""
    h = hashlib.sha1()
    for rel, mtime in entries:
        h.update(f"{rel}\0{mtime}\n".encode("utf-8", "surrogateescape"))
    return h.hexdigest()


class SplitCache:
    """``load(fp, options)`` returns the stored data when fingerprint, version and options match;
    ``save(fp, options, data)`` writes it atomically."""

    def __init__(self, cache_dir: Optional[str], reader: str, version: int, dataset_path: str) -> None:
        self.version = version
        real = os.path.realpath(dataset_path)
        self.dataset_path = real
        key = hashlib.sha1(real.encode("utf-8", "surrogateescape")).hexdigest()[:16]
        self.path = os.path.join(cache_dir, f"{reader}-{key}.json") if cache_dir else None

    def load(self, fp: str, options: Any) -> Optional[Any]:
        if self.path is None or not os.path.isfile(self.path):
            return None
        try:
            with open(self.path, "r", encoding="utf-8") as f:
                stored = json.load(f)
        except (OSError, ValueError) as e:
            logger.warning("Ignoring unreadable split cache %s (%s)", self.path, e)
            return None
        if (stored.get("version") != self.version or stored.get("fingerprint") != fp
                or stored.get("dataset") != self.dataset_path or stored.get("options") != options):
            logger.info("Split cache %s is stale (the dataset folder or the options changed); "
                        "re-reading %s", self.path, self.dataset_path)
            return None
        return stored["data"]

    def save(self, fp: str, options: Any, data: Any) -> None:
        if self.path is None:
            return
        payload = {"version": self.version, "fingerprint": fp, "dataset": self.dataset_path,
                   "options": options, "data": data}
        try:
            os.makedirs(os.path.dirname(self.path), exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=".split-", suffix=".json", dir=os.path.dirname(self.path))
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                json.dump(payload, f, separators=(",", ":"))
            os.replace(tmp, self.path)
        except OSError as e:
            logger.warning("Cannot write the split cache %s (%s); set DATASETS.CACHE_DIR to a "
                           "writable folder to cache splits", self.path, e)
