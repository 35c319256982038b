"""``kill -9`` of a training process at a random iteration, then ``--resume``: the run ends with the
same final state and metrics as an uninterrupted one (deterministic mode, tiny synthetic world,
2 epochs x 3 iterations)."""
import os
import random
import signal
import subprocess
import sys
import time

import pytest

from helpers import ROOT, COMMON, assert_same_final_state, main, tiny_opts

PLUGIN = os.path.join(ROOT, "tests", "plugins", "pause_plugin.py")


def _wait_for(path, proc, timeout=300):
    start = time.monotonic()
    while not os.path.exists(path):
        assert proc.poll() is None, f"the training process ended (code {proc.returncode}) before pausing"
        assert time.monotonic() - start < timeout, "the training process never reached the iteration"
        time.sleep(0.05)


@pytest.mark.slow
def test_kill_9_at_a_random_iteration_then_resume_is_exact(tiny_root, tmp_path):
    reference = tmp_path / "reference"
    assert main(tiny_opts(tiny_root, reference, **COMMON)) == 0

    # Iteration checkpoints every 2 iterations: depending on the drawn iteration the resume starts
    # from scratch (kill at 1), mid-epoch 1 (2, 3) or mid-epoch 2 (4, 5, after epoch 1's checkpoint).
    rng = random.Random()
    at, delay = rng.randint(1, 5), rng.uniform(0.0, 0.25)
    out = tmp_path / "killed"
    opts = tiny_opts(tiny_root, out, **COMMON, **{"SOLVER.CHECKPOINT_ITER_PERIOD": 2})
    env = dict(os.environ, PYTHONPATH=ROOT, UNREIDUSL_PAUSE_AT=str(at),
               UNREIDUSL_PAUSE_FILE=str(tmp_path / "paused"), UNREIDUSL_RELEASE_FILE=str(tmp_path / "go"))
    with open(tmp_path / "killed.log", "w") as log:
        proc = subprocess.Popen(
            [sys.executable, os.path.join(ROOT, "tools", "main.py")] + opts
            + ["PLUGINS", f"['{PLUGIN}']", "HOOKS", "['PauseAtIteration']"],
            env=env, stdout=log, stderr=subprocess.STDOUT)
        try:
            _wait_for(tmp_path / "paused", proc)
            (tmp_path / "go").touch()          # let it run into iteration `at`, then kill it mid-step
            time.sleep(delay)
            proc.send_signal(signal.SIGKILL)
        finally:
            proc.kill()
            proc.wait()
    case = f"killed {delay:.2f}s after iteration {at} began"
    assert proc.returncode == -signal.SIGKILL, case
    assert not (out / "model_final.pth").exists(), case

    assert main(["--resume"] + opts) == 0, case
    assert_same_final_state(str(reference / "model_final.pth"), str(out / "model_final.pth"))
