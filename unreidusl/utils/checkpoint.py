"""Atomic, weights-only-loadable checkpoints of the complete training state."""
import io
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


class _RecordingFile(io.RawIOBase):
    """A writable file that remembers the ``OSError`` of a failed write: ``torch.save`` turns it
    into a RuntimeError that no longer says "disk full"."""

    def __init__(self, f) -> None:
        super().__init__()
        self.f, self.error = f, None

    def writable(self) -> bool:
        return True

    def write(self, data) -> int:
        try:
            return self.f.write(data)
        except OSError as e:
            self.error = e
            raise


def _atomic_write(path: str, write: Callable[[IO[bytes]], None]) -> None:
    """``write(f)`` into a temporary file in the same folder, fsync, then ``os.replace``: a crash or a
    full disk leaves either the previous file or the new one, never a truncated one.  An ``OSError``
    (disk full, read-only or missing folder), also one that ``torch.save`` reports as a
    RuntimeError, becomes a ``CheckpointError`` naming the file and the cause."""
    folder = os.path.dirname(os.path.abspath(path))
    tmp = None
    try:
        fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".pth", dir=folder)
        with os.fdopen(fd, "wb") as f:
            recorder = _RecordingFile(f)
            try:
                write(recorder)
            except RuntimeError as e:
                if recorder.error is not None:
                    raise recorder.error from e
                raise
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
    """Saves ``name.pth`` files in ``save_dir`` and records the newest one in ``last_checkpoint``.
    ``run_checkpoint``: the newest checkpoint of this run (written by this process, or the one it
    resumed from), None before the first."""

    def __init__(self, save_dir: str) -> None:
        self.save_dir = save_dir
        self.run_checkpoint: Optional[str] = None

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
        self.run_checkpoint = path
        return path

    def last_checkpoint(self) -> Optional[str]:
        marker = os.path.join(self.save_dir, LAST_CHECKPOINT)
        if not os.path.isfile(marker):
            return None
        try:
            with open(marker, encoding="utf-8") as f:
                name = f.read(4096).strip()
        except UnicodeDecodeError:
            name = ""
        if not name or os.sep in name or "\0" in name or not name.endswith(".pth"):
            raise CheckpointError(f"{marker} should hold the file name of the newest checkpoint (e.g. "
                                  f"model_0003.pth) but does not. Write that name into it, or delete it "
                                  f"to start from scratch.")
        path = os.path.join(self.save_dir, name)
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
