"""OUTPUT_DIR is never clobbered: an earlier run is refused unless --resume / --overwrite, a folder
in use by a live process is refused (a real second process holds the lock), a lock left by a
process killed with -9 is taken over, --resume with changed keys keeps the earlier config, orphan
temporary files of an interrupted write are removed, and OUTPUT_DIR being a file is one line."""
import os
import signal
import subprocess
import sys
import textwrap

import pytest

from unreidusl.engine.run_dir import (LOCK_NAME, OutputDirError, claim_output_dir, previous_run_files,
                                      release_output_dirs)

from helpers import ROOT, main, tiny_opts


def _finished_run(folder):
    folder.mkdir(parents=True, exist_ok=True)
    files = {"config.yaml": "SEED: 1\n", "last_checkpoint": "model_final.pth",
             "model_final.pth": "weights", "log.txt": "old log\n", "metrics.json": "{}\n"}
    for name, text in files.items():
        (folder / name).write_text(text)
    return files


def _snapshot(folder):
    return {p.name: p.read_bytes() for p in folder.iterdir() if p.is_file() and p.name != LOCK_NAME}


def test_fresh_run_into_a_finished_output_dir_is_refused_and_changes_nothing(tiny_root, tmp_path, capsys):
    out = tmp_path / "run"
    _finished_run(out)
    before = _snapshot(out)
    assert main(tiny_opts(tiny_root, out)) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and str(out) in err[0], err
    assert "--resume" in err[0] and "--overwrite" in err[0] and "another OUTPUT_DIR" in err[0]
    assert _snapshot(out) == before


def test_overwrite_deletes_only_the_run_files(tmp_path):
    out = tmp_path / "run"
    _finished_run(out)
    (out / "tensorboard").mkdir()
    (out / "notes.md").write_text("mine")
    path, notes = claim_output_dir(str(out), "SEED: 2\n", overwrite=True)
    assert path == str(out / "config.yaml")
    assert sorted(p.name for p in out.iterdir()) == sorted([LOCK_NAME, "notes.md"])
    assert any("--overwrite: deleted" in n and "model_final.pth" in n for n in notes)
    assert previous_run_files(str(out)) == []


def test_eval_only_keeps_the_training_config(tmp_path):
    out = tmp_path / "run"
    _finished_run(out)
    path, _ = claim_output_dir(str(out), "SEED: 3\n", eval_only=True)
    assert path == str(out / "config.eval.yaml")
    assert (out / "config.yaml").read_text() == "SEED: 1\n"


def test_resume_with_changed_keys_keeps_the_earlier_config(tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    (out / "config.yaml").write_text("SEED: 1\nSOLVER:\n  BASE_LR: 0.1\n  MAX_EPOCHS: 5\n")
    (out / "config.1.yaml").write_text("older\n")
    _, notes = claim_output_dir(str(out), "SEED: 1\nSOLVER:\n  BASE_LR: 0.2\n  MAX_EPOCHS: 5\n", resume=True)
    assert (out / "config.2.yaml").read_text().startswith("SEED: 1\nSOLVER:\n  BASE_LR: 0.1")
    assert not (out / "config.yaml").exists()          # the caller writes the new one
    assert len(notes) == 1 and "SOLVER.BASE_LR: 0.1 -> 0.2" in notes[0] and "config.2.yaml" in notes[0]
    assert "MAX_EPOCHS" not in notes[0]
    release_output_dirs()
    (out / "config.yaml").write_text("SEED: 1\nSOLVER:\n  BASE_LR: 0.2\n  MAX_EPOCHS: 5\n")
    _, notes = claim_output_dir(str(out), "SEED: 1\nSOLVER:\n  BASE_LR: 0.2\n  MAX_EPOCHS: 5\n", resume=True)
    assert notes == [] and not (out / "config.3.yaml").exists()


def test_orphan_temporary_files_are_removed(tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    (out / ".tmp-abc123.pth").write_bytes(b"half a checkpoint")
    (out / "keep.pth").write_bytes(b"x")
    _, notes = claim_output_dir(str(out), "", resume=True)
    assert not (out / ".tmp-abc123.pth").exists() and (out / "keep.pth").exists()
    assert any(".tmp-abc123.pth" in n for n in notes)


def test_output_dir_that_is_a_file_is_one_line(tiny_root, tmp_path, capsys):
    f = tmp_path / "file"
    f.write_text("not a folder")
    assert main(tiny_opts(tiny_root, f)) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and str(f) in err[0] and "is a file" in err[0], err


HOLDER = textwrap.dedent("""
    import sys, time
    from unreidusl.engine.run_dir import claim_output_dir
    claim_output_dir(sys.argv[1], "")
    print("locked", flush=True)
    time.sleep(120)
""")


def test_second_run_is_refused_while_the_first_lives_and_takes_over_after_kill_9(tiny_root, tmp_path,
                                                                                capsys):
    out = tmp_path / "run"
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(out)], stdout=subprocess.PIPE, text=True,
                              cwd=ROOT)
    try:
        assert holder.stdout.readline().strip() == "locked"
        assert main(tiny_opts(tiny_root, out)) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and f"process {holder.pid}" in err[0] and "in use" in err[0], err
        assert not (out / "log.txt").exists()            # the refused run wrote nothing there
        with pytest.raises(OutputDirError, match=f"process {holder.pid}"):
            claim_output_dir(str(out), "")
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    path, notes = claim_output_dir(str(out), "")
    assert path == str(out / "config.yaml")
    assert any(f"process {holder.pid}" in n and "no longer running" in n for n in notes), notes
    assert f'"pid": {os.getpid()}' in (out / LOCK_NAME).read_text()
    release_output_dirs()
    assert not (out / LOCK_NAME).exists()
