"""Mixed-precision training (``SOLVER.AMP``): the forward under ``torch.autocast``, and for float16
a ``GradScaler`` (loss × S before backward, gradients ÷ S before the step, the step skipped and S
halved on inf/NaN gradients, S doubled after a run of good steps)."""
from contextlib import nullcontext

import torch

__all__ = ["MixedPrecision", "build_mixed_precision"]

_DTYPES = {"bfloat16": torch.bfloat16, "float16": torch.float16}


class MixedPrecision:
    """``with amp.autocast(): loss = ...; amp.backward(loss); amp.step(optimizer)``.

    Disabled: full precision, plain ``backward`` / ``step``. bfloat16 needs no scaling (same
    exponent range as float32); float16 runs on CUDA only."""

    def __init__(self, enabled: bool = False, dtype: str = "bfloat16", device_type: str = "cpu") -> None:
        if dtype not in _DTYPES:
            raise ValueError(f"SOLVER.AMP.DTYPE must be one of {sorted(_DTYPES)}, got {dtype!r}")
        if enabled and dtype == "float16" and device_type != "cuda":
            raise ValueError("SOLVER.AMP.DTYPE float16 needs CUDA (CPU autocast is bfloat16-only here): "
                             "use SOLVER.AMP.DTYPE bfloat16 or SOLVER.AMP.ENABLED False")
        self.enabled, self.dtype, self.device_type = enabled, _DTYPES[dtype], device_type
        self.scaler = torch.amp.GradScaler(device_type) if enabled and dtype == "float16" else None

    def autocast(self):
        if not self.enabled:
            return nullcontext()
        return torch.autocast(self.device_type, dtype=self.dtype)

    def backward(self, loss: torch.Tensor) -> None:
        (loss if self.scaler is None else self.scaler.scale(loss)).backward()

    def step(self, optimizer: torch.optim.Optimizer) -> None:
        if self.scaler is None:
            optimizer.step()
            return
        self.scaler.step(optimizer)
        self.scaler.update()

    def state_dict(self) -> dict:
        return {} if self.scaler is None else self.scaler.state_dict()

    def load_state_dict(self, state: dict) -> None:
        if self.scaler is not None and state:
            self.scaler.load_state_dict(state)


def build_mixed_precision(cfg, device: torch.device) -> MixedPrecision:
    amp = cfg.SOLVER.AMP
    return MixedPrecision(amp.ENABLED, amp.DTYPE, torch.device(device).type)
