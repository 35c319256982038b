"""Atomic, weights-only-loadable checkpoints of the complete training state."""
import logging
import os
import random
import tempfile
from typing import IO, Any, Callable, Dict, Optional

import numpy as np
import torch

logger = logging.getLogger(__name__)

LAST_CHECKPOINT = "last_checkpoint"


class CheckpointError(RuntimeError):
    """A checkpoint cannot be written or read."""


def rng_state() -> Dict[str, Any]:
    """Python, numpy and torch RNG states as plain containers and tensors (weights_only-safe)."""
    _, keys, pos, has_gauss, gauss = np.random.get_state()
    state = {
        "python": random.getstate(),
        "numpy": {"keys": torch.from_numpy(keys.astype(np.int64)), "pos": int(pos),
                  "has_gauss": int(has_gauss), "gauss": float(gauss)},
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: Dict[str, Any]) -> None:
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    n = state["numpy"]
    np.random.set_state(("MT19937", n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["gauss"]))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _atomic_write(path: str, write: Callable[[IO[bytes]], None]) -> None:
    """``write(f)`` into a temporary file in the same folder, fsync, then ``os.replace``: a crash or a
    full disk leaves either the previous file or the new one, never a truncated one.  An ``OSError``
    (disk full, read-only or missing folder) becomes a ``CheckpointError`` naming the file."""
    folder = os.path.dirname(os.path.abspath(path))
    tmp = None
    try:
        fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".pth", dir=folder)
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as e:
        if tmp is not None and os.path.exists(tmp):
            os.remove(tmp)
        if isinstance(e, OSError):
            raise CheckpointError(
                f"Could not write {path}: {e}. The previous {os.path.basename(path)} (if any) is intact; "
                f"free disk space or fix the permissions of {folder}, then --resume."
            ) from e
        raise


def atomic_torch_save(obj: Any, path: str) -> None:
    """``torch.save`` through :func:`_atomic_write`."""
    _atomic_write(path, lambda f: torch.save(obj, f))


class Checkpointer:
    """Saves ``name.pth`` files in ``save_dir`` and records the newest one in ``last_checkpoint``."""

    def __init__(self, save_dir: str) -> None:
        self.save_dir = save_dir

    def save(self, name: str, state: Dict[str, Any]) -> str:
        """Write ``name.pth``, then point ``last_checkpoint`` at it; if either write fails the marker
        still names the previous complete checkpoint, and the error says which one that is."""
        path = os.path.join(self.save_dir, f"{name}.pth")
        try:
            os.makedirs(self.save_dir, exist_ok=True)
            atomic_torch_save(state, path)
            marker = os.path.join(self.save_dir, LAST_CHECKPOINT)
            _atomic_write(marker, lambda f: f.write(f"{name}.pth".encode()))
        except (OSError, CheckpointError) as e:
            previous = self.last_checkpoint()
            keep = (f"the previous checkpoint {previous} is intact and --resume continues from it"
                    if previous else "there is no previous checkpoint")
            raise CheckpointError(f"Checkpoint {path} was not saved ({e.__cause__ or e}); {keep}. Free disk "
                                  f"space or make {self.save_dir} (OUTPUT_DIR) writable.") from e
        logger.info("Saved checkpoint %s", path)
        return path

    def last_checkpoint(self) -> Optional[str]:
        marker = os.path.join(self.save_dir, LAST_CHECKPOINT)
        if not os.path.isfile(marker):
            return None
        with open(marker) as f:
            path = os.path.join(self.save_dir, f.read().strip())
        if not os.path.isfile(path):
            raise CheckpointError(f"{marker} names {path}, which does not exist. Delete {marker} "
                                  f"to start from scratch, or restore the file.")
        return path


def load_checkpoint(path: str) -> Dict[str, Any]:
    """Load a checkpoint without executing code (``weights_only=True``)."""
    if not os.path.isfile(path):
        raise CheckpointError(f"Checkpoint {path} does not exist")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # torch raises several types for corrupt or unsafe files
        raise CheckpointError(
            f"Cannot load {path} as a weights-only checkpoint ({type(e).__name__}: {e}). The file is "
            f"corrupt, truncated, or contains pickled objects that unreidusl refuses to execute."
        ) from e
    if not isinstance(state, dict):
        raise CheckpointError(f"{path} holds a {type(state).__name__}, not a checkpoint or state "
                              f"dict (a dict of tensors); check the file")
    return state
