"""The progress policy (utils/progress.py) and the console colours (utils/logger.py)."""
import io
import logging
import re
import time

import numpy as np

from unreidusl.utils.logger import ColorFormatter, setup_logger
from unreidusl.utils.progress import progress, progress_mode


class Tty(io.StringIO):
    def isatty(self):
        return True


def test_mode_follows_terminal_rank_and_environment(monkeypatch):
    monkeypatch.delenv("UNREIDUSL_PROGRESS", raising=False)
    monkeypatch.delenv("RANK", raising=False)
    assert progress_mode(Tty()) == "bar" and progress_mode(io.StringIO()) == "log"
    monkeypatch.setenv("RANK", "1")                          # not the main process: silent
    assert progress_mode(Tty()) == "off"
    monkeypatch.setenv("RANK", "0")
    for forced in ("bar", "log", "off"):
        monkeypatch.setenv("UNREIDUSL_PROGRESS", forced)
        assert progress_mode(io.StringIO()) == forced


def test_bar_on_a_terminal_shows_rate_and_eta(monkeypatch):
    monkeypatch.delenv("UNREIDUSL_PROGRESS", raising=False)
    monkeypatch.delenv("RANK", raising=False)
    tty = Tty()
    for _ in progress(range(4), desc="work", unit="img", delay=0, stream=tty):
        time.sleep(0.15)                                  # past tqdm's refresh interval
    text = tty.getvalue()
    assert re.search(r"work: +\d+%.*\| [1-4]/4 \[00:0\d<00:0\d, +[\d.]+img/s\]", text), text


def test_log_lines_elsewhere(monkeypatch, caplog):
    monkeypatch.setenv("UNREIDUSL_PROGRESS", "log")
    monkeypatch.setenv("UNREIDUSL_PROGRESS_INTERVAL", "0")
    with caplog.at_level(logging.INFO, logger="unreidusl.progress"):
        with progress(total=4, desc="kNN", unit="row") as bar:
            bar.update(1)
            bar.update(3)
    lines = [r.getMessage() for r in caplog.records if r.name == "unreidusl.progress"]
    assert lines[0].startswith("kNN: 1/4 (25%), ") and "row/s, ETA " in lines[0]
    assert lines[-1].startswith("kNN: 4/4 (100%)")
    caplog.clear()
    monkeypatch.setenv("UNREIDUSL_PROGRESS_INTERVAL", "3600")          # short loops stay silent
    with caplog.at_level(logging.INFO, logger="unreidusl.progress"):
        list(progress(range(100), desc="quiet"))
    assert not [r for r in caplog.records if r.name == "unreidusl.progress"]


def test_heavy_loops_report(monkeypatch, caplog):
    """kNN, Jaccard, ranking and re-ranking report through the policy."""
    from unreidusl.cluster.jaccard import jaccard_distance
    from unreidusl.evaluation.rank import evaluate_features
    from unreidusl.evaluation.rerank import ReRankedDistance

    monkeypatch.setenv("UNREIDUSL_PROGRESS", "log")
    monkeypatch.setenv("UNREIDUSL_PROGRESS_INTERVAL", "0")
    rng = np.random.default_rng(0)
    x = rng.normal(size=(60, 8)).astype(np.float32)
    with caplog.at_level(logging.INFO, logger="unreidusl.progress"):
        jaccard_distance(x, 6, 2, knn_backend="numpy")
        evaluate_features(x[:10], x[10:], np.arange(10) % 5, np.arange(50) % 5, np.zeros(10),
                          np.ones(50))
        ReRankedDistance(x[:10], x[10:], 6, 2)
    text = "\n".join(r.getMessage() for r in caplog.records)
    for desc in ("Jaccard distance: kNN:", "Jaccard distance:", "ranking:", "re-ranking: kNN:",
                 "re-ranking: Jaccard:"):
        assert desc in text, desc


def test_synthetic_generation_reports(monkeypatch, caplog, tmp_path):
    from unreidusl.data.synthetic import make_synthetic

    monkeypatch.setenv("UNREIDUSL_PROGRESS", "log")
    monkeypatch.setenv("UNREIDUSL_PROGRESS_INTERVAL", "0")
    with caplog.at_level(logging.INFO, logger="unreidusl.progress"):
        make_synthetic(root=str(tmp_path / "s"), fmt="market1501", seed=1, preset="tiny",
                       num_train_ids=2, num_test_ids=2, image_size=[32, 16])
    assert any(r.getMessage().startswith("synthetic images: ") for r in caplog.records)


def test_colours_only_on_a_terminal(monkeypatch, tmp_path):
    monkeypatch.delenv("NO_COLOR", raising=False)
    record = logging.LogRecord("unreidusl.x", logging.WARNING, __file__, 1, "careful", None, None)
    coloured = ColorFormatter().format(record)
    assert "\x1b[" in coloured and coloured.endswith(" careful") and "WARNING" in coloured
    monkeypatch.setattr("sys.stdout", Tty())
    logger = setup_logger(str(tmp_path))
    assert isinstance(logger.handlers[0].formatter, ColorFormatter)
    logger.warning("to both")
    text = (tmp_path / "log.txt").read_text()
    assert "WARNING] to both" in text and "\x1b[" not in text            # the file stays plain
    monkeypatch.setenv("NO_COLOR", "1")
    assert not isinstance(setup_logger(str(tmp_path)).handlers[0].formatter, ColorFormatter)
