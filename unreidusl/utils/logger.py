"""Logging to the console and ``OUTPUT_DIR/log.txt`` (appended, so a resumed run keeps its history).

On a terminal the console prefixes are coloured by level (termcolor: warnings yellow, errors red,
the rest dim green); the file, pipes and CI logs get plain text. ``NO_COLOR`` (any value) turns
the colours off.
"""
import logging
import os
import sys

_FORMAT = "[%(asctime)s %(name)s %(levelname)s] %(message)s"
_DATEFMT = "%m/%d %H:%M:%S"

__all__ = ["setup_logger", "ColorFormatter", "use_color"]


def use_color(stream) -> bool:
    """Colours only for a terminal, with termcolor installed and ``NO_COLOR`` unset."""
    if os.environ.get("NO_COLOR"):
        return False
    try:
        if not stream.isatty():
            return False
    except (AttributeError, ValueError):
        return False
    try:
        import termcolor  # noqa: F401, PLC0415
    except ImportError:  # pragma: no cover - termcolor is a requirement
        return False
    return True


class ColorFormatter(logging.Formatter):
    """The plain format, with the ``[time name LEVEL]`` prefix coloured by level."""

    COLORS = {logging.DEBUG: ("blue", []), logging.INFO: ("green", ["dark"]),
              logging.WARNING: ("yellow", ["bold"]), logging.ERROR: ("red", ["bold"]),
              logging.CRITICAL: ("red", ["bold", "reverse"])}

    def __init__(self) -> None:
        super().__init__("%(message)s", datefmt=_DATEFMT)

    def format(self, record: logging.LogRecord) -> str:
        from termcolor import colored  # noqa: PLC0415

        message = super().format(record)
        record.asctime = self.formatTime(record, self.datefmt)
        prefix = f"[{record.asctime} {record.name} {record.levelname}]"
        level = max((lv for lv in self.COLORS if lv <= record.levelno), default=logging.DEBUG)
        color, attrs = self.COLORS[level]
        # force_color: use_color() already decided that this stream is a terminal
        return f"{colored(prefix, color, attrs=attrs, force_color=True)} {message}"


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
    formatter = logging.Formatter(_FORMAT, datefmt=_DATEFMT)
    console = logging.StreamHandler(sys.stdout)
    console.setFormatter(ColorFormatter() if use_color(sys.stdout) else formatter)
    console.setLevel(console_level)
    logger.addHandler(console)
    if output_dir:
        os.makedirs(output_dir, exist_ok=True)
        fh = logging.FileHandler(os.path.join(output_dir, filename), mode="a", encoding="utf-8")
        fh.setFormatter(formatter)
        logger.addHandler(fh)
    return logger
