"""unreidusl: unsupervised person and vehicle re-identification."""

__version__ = "0.1.0"
