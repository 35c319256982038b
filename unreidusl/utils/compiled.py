"""Optional compiled kernels (Cython, ``csrc/``): loaded once, with a NumPy fallback when missing.

A kernel module carries an integer ``<NAME>_API`` that is bumped with every signature change, so a
stale build (a ``.so`` older than its ``.pyx``) is detected and not called."""
from __future__ import annotations

import importlib
import logging
from typing import Callable, Optional

__all__ = ["CompiledKernel"]


class CompiledKernel:
    """``get()`` returns ``module.attr`` of a compiled extension, or None when it cannot be
    imported or its API number is not ``api``; the reason is logged once per process."""

    def __init__(self, module: str, attr: str, api_name: str, api: int, fallback: str,
                 logger: logging.Logger, level: int = logging.INFO) -> None:
        self.module, self.attr, self.api_name, self.api = module, attr, api_name, api
        self.fallback, self.logger, self.level = fallback, logger, level
        self._fn: Optional[Callable] = None
        self._missing: Optional[str] = None

    def get(self) -> Optional[Callable]:
        if self._fn is None and self._missing is None:
            try:
                mod = importlib.import_module(self.module)
            except ImportError as exc:
                self._missing = f"cannot import {self.module} ({exc})"
            else:
                found = getattr(mod, self.api_name, None)
                if found == self.api:
                    self._fn = getattr(mod, self.attr)
                else:
                    self._missing = f"stale {self.module} build (API {found}, expected {self.api})"
            if self._missing is not None:
                self.logger.log(self.level, "Compiled kernel unavailable: %s. Using %s (same "
                                "results, slower); rebuild with `pip install -e .` (or `python "
                                "setup.py build_ext --inplace`).", self._missing, self.fallback)
        return self._fn

    def available(self) -> bool:
        return self.get() is not None
