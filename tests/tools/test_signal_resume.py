"""SIGTERM / SIGINT during training: a checkpoint at the next step boundary, a clean exit (code
128 + signal), and ``--resume`` ends exactly like an uninterrupted run (deterministic mode, tiny
synthetic world, 2 epochs x 3 iterations)."""
import os
import signal

import pytest

from unreidusl.engine import HOOK_REGISTRY, HookBase
from unreidusl.utils.checkpoint import load_checkpoint

from helpers import COMMON, assert_same_final_state, main, tiny_opts


@HOOK_REGISTRY.register()
class SignalSelfAfterIteration(HookBase):
    """Test hook: after global iteration ``at``, send ``signum`` to this process."""
    at, signum = -1, signal.SIGTERM

    def __init__(self, cfg, trainer):
        pass

    def after_step(self):
        if self.trainer.iter == self.at:
            os.kill(os.getpid(), self.signum)


@pytest.fixture(scope="module")
def reference(tiny_root, tmp_path_factory):
    out = tmp_path_factory.mktemp("reference")
    assert main(tiny_opts(tiny_root, out, **COMMON)) == 0
    return str(out / "model_final.pth")


@pytest.mark.slow
@pytest.mark.parametrize("signum,at,position", [
    (signal.SIGTERM, 1, {"epoch": 0, "inner_iter": 2}),    # inside epoch 1: resumes at its 3rd step
    (signal.SIGINT, 2, {"epoch": 1}),                      # last step of epoch 1: after its hooks
])
def test_signal_checkpoints_exits_and_resumes_exactly(tiny_root, tmp_path, monkeypatch, capsys, reference,
                                                      signum, at, position):
    monkeypatch.setattr(SignalSelfAfterIteration, "at", at)
    monkeypatch.setattr(SignalSelfAfterIteration, "signum", signum)
    opts = tiny_opts(tiny_root, tmp_path, **COMMON)
    handler = signal.getsignal(signum)
    assert main(opts + ["HOOKS", "['SignalSelfAfterIteration']"]) == 128 + signum
    assert signal.getsignal(signum) is handler                          # handlers restored
    out = capsys.readouterr().out
    saved = tmp_path / "model_interrupted.pth"
    assert f"Stopped by {signal.Signals(signum).name}" in out and str(saved) in out and "--resume" in out
    state = load_checkpoint(str(saved))
    assert {k: state.get(k) for k in ("epoch", "inner_iter")} == {"inner_iter": None, **position}
    assert not (tmp_path / "model_final.pth").exists()

    monkeypatch.setattr(SignalSelfAfterIteration, "at", -1)
    assert main(["--resume"] + opts) == 0
    assert_same_final_state(reference, str(tmp_path / "model_final.pth"))
