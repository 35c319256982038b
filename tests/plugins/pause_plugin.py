"""Test plugin: a hook that stops the run at a chosen iteration until released, so that a test can
kill the process there (tests/tools/test_kill_resume.py)."""
import os
import time

from unreidusl.engine import HOOK_REGISTRY, HookBase


@HOOK_REGISTRY.register()
class PauseAtIteration(HookBase):
    """Before global iteration ``$UNREIDUSL_PAUSE_AT``: create ``$UNREIDUSL_PAUSE_FILE``, then wait
    until ``$UNREIDUSL_RELEASE_FILE`` exists.  Does nothing without these variables."""

    def __init__(self, cfg, trainer) -> None:
        self.at = int(os.environ.get("UNREIDUSL_PAUSE_AT", -1))

    def before_step(self) -> None:
        if self.trainer.iter != self.at:
            return
        with open(os.environ["UNREIDUSL_PAUSE_FILE"], "w") as f:
            f.write(str(self.at))
        while not os.path.exists(os.environ["UNREIDUSL_RELEASE_FILE"]):
            time.sleep(0.02)
