"""Logging to the console and ``OUTPUT_DIR/log.txt`` (appended, so a resumed run keeps its history)."""
import logging
import os
import sys

_FORMAT = "[%(asctime)s %(name)s %(levelname)s] %(message)s"


def setup_logger(output_dir: str = "", name: str = "unreidusl", level: int = logging.INFO,
                 console_level: int = logging.NOTSET, filename: str = "log.txt") -> logging.Logger:
    """Records of ``level`` and above go to ``output_dir/filename``, and to stdout from
    ``console_level`` up (default: the same ``level``)."""
    logger = logging.getLogger(name)
    logger.setLevel(level)
    logger.propagate = False
    for h in list(logger.handlers):
        logger.removeHandler(h)
        h.close()
    formatter = logging.Formatter(_FORMAT, datefmt="%m/%d %H:%M:%S")
    console = logging.StreamHandler(sys.stdout)
    console.setFormatter(formatter)
    console.setLevel(console_level)
    logger.addHandler(console)
    if output_dir:
        os.makedirs(output_dir, exist_ok=True)
        fh = logging.FileHandler(os.path.join(output_dir, filename), mode="a", encoding="utf-8")
        fh.setFormatter(formatter)
        logger.addHandler(fh)
    return logger
