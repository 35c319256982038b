from .evaluator import ReidEvaluator, format_metrics, pairwise_distance
from .extract import extract_features

__all__ = ["ReidEvaluator", "extract_features", "format_metrics", "pairwise_distance"]
