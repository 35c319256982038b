"""Ownership of ``OUTPUT_DIR``: one run at a time, and never a silent overwrite of an earlier run.

:func:`claim_output_dir` is called by rank 0 before anything is written:

1. ``OUTPUT_DIR`` must be a folder (created when missing).
2. **Lock.** ``OUTPUT_DIR/.unreidusl.lock`` is locked with ``flock`` (``msvcrt.locking`` on
   Windows) and holds the owner's pid, host, start time and command line.  The kernel releases the
   lock when its process ends, however it ends (``kill -9`` included), so a lock left by a dead
   process is simply taken over (and reported); a live owner makes the second run stop with
   :class:`OutputDirError` naming that process.  The lock is held until the process exits.
3. Orphan temporary files of an interrupted atomic write (``.tmp-*.pth``) are removed.
4. **Previous run.** A folder holding another run's training files (``config.yaml``,
   ``last_checkpoint``, ``model_*.pth``, ``metrics.json``) is

   * continued with ``resume`` (``--resume``): when the merged config differs from the saved one,
     the changed keys are logged and the earlier file is kept as ``config.1.yaml`` (``.2``, ...);
   * replaced only with ``overwrite`` (``--overwrite``): the run files listed in
     :data:`RUN_FILES` are deleted first;
   * otherwise refused with a one-line error naming the folder and the three ways out.

   An evaluation-only run never touches the training files: its config goes to
   ``config.eval.yaml`` and its log is appended to ``log.txt``.
"""
from __future__ import annotations

import atexit
import fnmatch
import json
import os
import shutil
import socket
import sys
import time
from typing import Dict, List, Optional, Tuple

import yaml

__all__ = ["OutputDirError", "OutputDirLock", "claim_output_dir", "release_output_dirs",
           "previous_run_files", "RUN_FILES", "LOCK_NAME"]

LOCK_NAME = ".unreidusl.lock"
# What a training run writes into OUTPUT_DIR (patterns; folders end with "/"); --overwrite deletes
# exactly these.
RUN_FILES = ("config*.yaml", "log.txt", "log.rank*.txt", "metrics.json", "last_checkpoint",
             "model_*.pth", "tensorboard/", "auxinfo/", "clusters/", "visualize/")
# The files whose presence means "a training run was here".
RUN_MARKERS = ("config.yaml", "last_checkpoint", "metrics.json", "model_*.pth")

_HELD: Dict[str, "OutputDirLock"] = {}


class OutputDirError(RuntimeError):
    """OUTPUT_DIR cannot be used by this run (a file, in use, or holding another run)."""


def _matches(folder: str, patterns) -> List[str]:
    names = sorted(os.listdir(folder))
    out = []
    for name in names:
        is_dir = os.path.isdir(os.path.join(folder, name))
        for pattern in patterns:
            if pattern.endswith("/") == is_dir and fnmatch.fnmatch(name, pattern.rstrip("/")):
                out.append(name)
                break
    return out


def previous_run_files(folder: str) -> List[str]:
    """The names in ``folder`` that show an earlier training run (empty for a fresh folder)."""
    return _matches(folder, RUN_MARKERS) if os.path.isdir(folder) else []


class OutputDirLock:
    """An exclusive, process-lifetime lock on a folder (see the module docstring, step 2)."""

    def __init__(self, folder: str) -> None:
        self.folder = folder
        self.path = os.path.join(folder, LOCK_NAME)
        self.fd: Optional[int] = None
        self.taken_over: Optional[str] = None

    @staticmethod
    def _owner_text(info: dict) -> str:
        if not info:
            return "another process"
        return (f"process {info.get('pid', '?')} on {info.get('host', '?')} (started "
                f"{info.get('started', '?')}: {info.get('command', '?')})")

    def _read_info(self, fd: int) -> dict:
        try:
            os.lseek(fd, 0, os.SEEK_SET)
            raw = os.read(fd, 65536)
            info = json.loads(raw.decode("utf-8")) if raw.strip() else {}
        except (OSError, UnicodeDecodeError, json.JSONDecodeError):
            info = {}
        return info if isinstance(info, dict) else {}

    def acquire(self) -> "OutputDirLock":
        while True:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                _lock_fd(fd)
            except OSError:
                owner = self._read_info(fd)
                os.close(fd)
                raise OutputDirError(
                    f"OUTPUT_DIR {self.folder} is in use by {self._owner_text(owner)}. Wait for it to "
                    f"finish, or give this run another OUTPUT_DIR") from None
            # The previous owner may have deleted the file between our open and our lock: then we
            # hold a lock on a file nobody else can see; open the new one instead.
            try:
                same = os.path.samestat(os.fstat(fd), os.stat(self.path))
            except FileNotFoundError:
                same = False
            if same:
                break
            os.close(fd)
        previous = self._read_info(fd)
        if previous.get("pid") is not None and previous.get("pid") != os.getpid():
            self.taken_over = (f"{self.folder}: took over the lock of {self._owner_text(previous)}, "
                               f"which is no longer running")
        info = {"pid": os.getpid(), "host": socket.gethostname(),
                "started": time.strftime("%Y-%m-%d %H:%M:%S"), "command": " ".join(sys.argv)}
        os.lseek(fd, 0, os.SEEK_SET)
        os.ftruncate(fd, 0)
        os.write(fd, json.dumps(info).encode("utf-8"))
        os.fsync(fd)
        self.fd = fd
        return self

    def release(self) -> None:
        if self.fd is None:
            return
        try:
            os.remove(self.path)
        except OSError:
            pass
        os.close(self.fd)  # closing the descriptor releases the lock
        self.fd = None


def _lock_fd(fd: int) -> None:
    """Non-blocking exclusive lock of an open file; OSError when another process holds it."""
    try:
        import fcntl  # noqa: PLC0415
    except ImportError:  # Windows
        import msvcrt  # noqa: PLC0415

        os.lseek(fd, 0, os.SEEK_SET)
        msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
        return
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)


def release_output_dirs() -> None:
    """Release every lock this process holds (at exit; tests call it between runs)."""
    for lock in list(_HELD.values()):
        lock.release()
    _HELD.clear()


def _remove_orphans(folder: str, notes: List[str]) -> None:
    for name in _matches(folder, (".tmp-*.pth",)):
        os.remove(os.path.join(folder, name))
        notes.append(f"Removed {os.path.join(folder, name)}, the temporary file of a write that was "
                     f"interrupted")


def _flatten(d, prefix=""):
    out = {}
    for k, v in (d or {}).items():
        if isinstance(v, dict):
            out.update(_flatten(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def changed_keys(old_yaml: str, new_yaml: str) -> List[str]:
    """``KEY: old -> new`` lines for the keys whose values differ between two config dumps."""
    try:
        old = _flatten(yaml.safe_load(old_yaml))
    except yaml.YAMLError:
        return ["(the saved config.yaml is not valid YAML)"]
    new = _flatten(yaml.safe_load(new_yaml))
    return [f"{k}: {old.get(k, '(absent)')!r} -> {new.get(k, '(absent)')!r}"
            for k in sorted(set(old) | set(new)) if old.get(k) != new.get(k)]


def _keep_previous_config(folder: str, new_yaml: str, notes: List[str]) -> None:
    path = os.path.join(folder, "config.yaml")
    if not os.path.isfile(path):
        return
    with open(path, encoding="utf-8", errors="replace") as f:
        old_yaml = f.read()
    diff = changed_keys(old_yaml, new_yaml)
    if not diff:
        return
    n = 1
    while os.path.exists(os.path.join(folder, f"config.{n}.yaml")):
        n += 1
    kept = os.path.join(folder, f"config.{n}.yaml")
    os.replace(path, kept)
    notes.append(f"--resume with a changed config ({len(diff)} keys; the earlier config is kept as "
                 f"{kept}):\n  " + "\n  ".join(diff))


def _remove_run_files(folder: str, notes: List[str]) -> None:
    names = _matches(folder, RUN_FILES)
    for name in names:
        p = os.path.join(folder, name)
        shutil.rmtree(p) if os.path.isdir(p) else os.remove(p)
    if names:
        notes.append(f"--overwrite: deleted the previous run's {', '.join(names)} from {folder}")


def claim_output_dir(folder: str, config_yaml: str, resume: bool = False, overwrite: bool = False,
                     eval_only: bool = False) -> Tuple[str, List[str]]:
    """Steps 1-4 of the module docstring.  Returns the path the merged config must be written to
    and the warnings to log once the log file is set up (nothing is logged here, so that a refused
    run writes nothing into the folder).  Raises :class:`OutputDirError` (one line: the folder and
    the fix)."""
    if os.path.exists(folder) and not os.path.isdir(folder):
        raise OutputDirError(f"OUTPUT_DIR {folder} is a file, not a folder: give OUTPUT_DIR a "
                             f"folder path (it is created when missing)")
    try:
        os.makedirs(folder, exist_ok=True)
    except OSError as e:
        raise OutputDirError(f"cannot create OUTPUT_DIR {folder} ({e.strerror}): give OUTPUT_DIR a "
                             f"writable folder") from None
    notes: List[str] = []
    key = os.path.realpath(folder)
    if key not in _HELD:
        try:
            lock = OutputDirLock(folder).acquire()
        except PermissionError as e:
            raise OutputDirError(f"cannot write in OUTPUT_DIR {folder} ({e.strerror}): give "
                                 f"OUTPUT_DIR a writable folder") from None
        if not _HELD:
            atexit.register(release_output_dirs)
        _HELD[key] = lock
        notes += [lock.taken_over] if lock.taken_over else []
    _remove_orphans(folder, notes)
    if eval_only:
        return os.path.join(folder, "config.eval.yaml"), notes
    previous = previous_run_files(folder)
    if resume:
        _keep_previous_config(folder, config_yaml, notes)
    elif previous and overwrite:
        _remove_run_files(folder, notes)
    elif previous:
        raise OutputDirError(
            f"OUTPUT_DIR {folder} holds an earlier run ({', '.join(previous[:4])}"
            f"{', ...' if len(previous) > 4 else ''}); nothing was changed. Continue it with "
            f"--resume, start this run in another OUTPUT_DIR, or replace it with --overwrite")
    return os.path.join(folder, "config.yaml"), notes
