from .evaluator import ReidEvaluator, format_metrics
from .extract import extract_features

__all__ = ["ReidEvaluator", "extract_features", "format_metrics"]
