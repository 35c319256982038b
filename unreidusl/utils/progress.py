"""One progress policy for every long loop of the toolkit (feature extraction, kNN, Jaccard,
ranking, re-ranking, synthetic generation, indexing).

* Only the main process (rank 0) reports; the other ranks of a distributed job stay silent.
* On a terminal (stderr is a TTY) a tqdm bar with the rate and the ETA, shown only when the loop
  lasts longer than ``delay`` seconds (short loops print nothing) and erased when it ends.
* Otherwise (log files, CI, pipes) plain log lines through the ``unreidusl.progress`` logger,
  at most one every ``UNREIDUSL_PROGRESS_INTERVAL`` seconds (default 30), the first one after that
  interval: ``kNN: 4096/12000 (34%), 812.3 rows/s, ETA 0:00:09``. A loop shorter than the
  interval writes nothing, so log files stay readable.

``UNREIDUSL_PROGRESS`` overrides the choice: ``bar``, ``log``, ``off`` or ``auto`` (default).

Use::

    for batch in progress(loader, desc="features", unit="batch"):
        ...
    with progress(total=n, desc="kNN", unit="rows") as bar:
        ...
        bar.update(rows_done_now)
"""
from __future__ import annotations

import datetime
import logging
import os
import sys
import time
from typing import Iterable, Optional

__all__ = ["progress", "Progress", "progress_mode"]

logger = logging.getLogger("unreidusl.progress")

_MODES = ("auto", "bar", "log", "off")


def _rank() -> int:
    """This process's rank, without importing torch when nothing has (the NumPy kNN backend)."""
    dist = getattr(sys.modules.get("torch"), "distributed", None)
    if dist is not None and dist.is_available() and dist.is_initialized():
        return int(dist.get_rank())
    return int(os.environ.get("RANK", "0") or 0)


def progress_mode(stream=None) -> str:
    """``"bar"``, ``"log"`` or ``"off"`` for this process (module docstring)."""
    mode = os.environ.get("UNREIDUSL_PROGRESS", "auto").strip().lower() or "auto"
    if mode not in _MODES:
        mode = "auto"
    if mode == "off":
        return "off"
    try:
        if _rank() != 0:
            return "off"
    except Exception:  # pragma: no cover - torch.distributed in a broken state
        pass
    if mode != "auto":
        return mode
    stream = sys.stderr if stream is None else stream
    try:
        tty = bool(stream.isatty())
    except (AttributeError, ValueError):
        tty = False
    return "bar" if tty else "log"


def _interval() -> float:
    try:
        return max(0.0, float(os.environ.get("UNREIDUSL_PROGRESS_INTERVAL", "30")))
    except ValueError:
        return 30.0


def _fmt_eta(seconds: float) -> str:
    if seconds != seconds or seconds == float("inf"):
        return "?"
    return str(datetime.timedelta(seconds=int(round(seconds))))


class Progress:
    """A progress reporter (module docstring); iterate over it, or ``update(n)`` by hand."""

    def __init__(self, iterable: Optional[Iterable] = None, total: Optional[float] = None,
                 desc: str = "", unit: str = "it", delay: float = 1.0, stream=None) -> None:
        self.iterable = iterable
        if total is None and iterable is not None:
            try:
                total = len(iterable)  # type: ignore[arg-type]
            except TypeError:
                total = None
        self.total, self.desc, self.unit = total, desc, unit
        self.n = 0
        self.mode = progress_mode(stream)
        self._bar = None
        self._start = time.perf_counter()
        self._interval = _interval()
        self._last_log = self._start
        if self.mode == "bar":
            from tqdm import tqdm  # noqa: PLC0415

            self._bar = tqdm(total=total, desc=desc or None, unit=unit, delay=delay, leave=False,
                             dynamic_ncols=True, file=stream if stream is not None else sys.stderr,
                             smoothing=0.1)

    # -- iteration --------------------------------------------------------------------------
    def __iter__(self):
        if self.iterable is None:
            raise TypeError("Progress(total=...) is not iterable: call update(n)")
        try:
            for item in self.iterable:
                yield item
                self.update(1)
        finally:
            self.close()

    def __len__(self) -> int:
        return int(self.total or 0)

    def __enter__(self) -> "Progress":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- reporting ---------------------------------------------------------------------------
    def update(self, n: float = 1) -> None:
        self.n += n
        if self._bar is not None:
            self._bar.update(n)
        elif self.mode == "log":
            now = time.perf_counter()
            if now - self._last_log >= self._interval and self._interval >= 0:
                self._last_log = now
                logger.info("%s", self.line(now))

    def line(self, now: Optional[float] = None) -> str:
        """``desc: n/total (p%), rate unit/s, ETA h:mm:ss`` (the plain log line)."""
        elapsed = max((now or time.perf_counter()) - self._start, 1e-9)
        rate = self.n / elapsed
        done = f"{self.n:g}"
        eta = ""
        if self.total:
            done = f"{self.n:g}/{self.total:g} ({100.0 * self.n / self.total:.0f}%)"
            eta = f", ETA {_fmt_eta((self.total - self.n) / rate) if rate > 0 else '?'}"
        return f"{self.desc or 'progress'}: {done}, {rate:.1f} {self.unit}/s{eta}"

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None


def progress(iterable: Optional[Iterable] = None, total: Optional[float] = None, desc: str = "",
             unit: str = "it", delay: float = 1.0, stream=None) -> Progress:
    """A :class:`Progress` following the policy of the module docstring."""
    return Progress(iterable, total, desc, unit, delay, stream)
