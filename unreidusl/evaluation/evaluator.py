"""Query/gallery evaluation of a model: features → distance → mAP / CMC / mINP."""
import logging
from typing import Dict, Sequence

import numpy as np
import torch
from tabulate import tabulate

from ..data import Sample, build_inference_loader
from .extract import extract_features
from .rank import evaluate_rank

logger = logging.getLogger(__name__)


def pairwise_distance(qf: torch.Tensor, gf: torch.Tensor, metric: str) -> np.ndarray:
    """``euclidean``: squared L2 ||q−g||² (= 2−2cos for unit features); ``cosine``: 1 − cos."""
    if metric == "euclidean":
        d = (qf.pow(2).sum(1, keepdim=True) + gf.pow(2).sum(1).unsqueeze(0)).addmm_(qf, gf.t(), alpha=-2)
        return d.clamp_(min=0).numpy()
    if metric == "cosine":
        qn, gn = torch.nn.functional.normalize(qf, dim=1), torch.nn.functional.normalize(gf, dim=1)
        return (1 - qn.mm(gn.t())).numpy()
    raise ValueError(f"TEST.METRIC must be 'euclidean' or 'cosine', got {metric!r}")


class ReidEvaluator:
    def __init__(self, cfg, query: Sequence[Sample], gallery: Sequence[Sample]) -> None:
        self.cfg = cfg
        self.query, self.gallery = list(query), list(gallery)
        if not self.query or not self.gallery:
            raise ValueError(f"Cannot evaluate: {len(self.query)} query and {len(self.gallery)} gallery samples")
        self.loader = build_inference_loader(cfg, self.query + self.gallery, cfg.TEST.IMS_PER_BATCH)

    def evaluate(self, model: torch.nn.Module) -> Dict[str, float]:
        feats = extract_features(model, self.loader, "query+gallery features")
        qf, gf = feats[: len(self.query)], feats[len(self.query):]
        dist = pairwise_distance(qf, gf, self.cfg.TEST.METRIC)
        res = evaluate_rank(
            dist,
            np.array([s.pid for s in self.query]), np.array([s.pid for s in self.gallery]),
            np.array([s.camid for s in self.query]), np.array([s.camid for s in self.gallery]),
            max_rank=self.cfg.TEST.MAX_RANK, use_cython=self.cfg.TEST.USE_CYTHON,
        )
        cmc = res["cmc"]
        metrics = {"mAP": 100 * res["mAP"], "mINP": 100 * res["mINP"]}
        for r in (1, 5, 10):
            metrics[f"Rank-{r}"] = 100 * float(cmc[min(r, len(cmc)) - 1])
        metrics["evaluator"] = res["impl"]
        return metrics


def format_metrics(metrics: Dict[str, float], title: str = "") -> str:
    keys = ["mAP", "Rank-1", "Rank-5", "Rank-10", "mINP", "evaluator"]
    row = [f"{metrics[k]:.2f}" if isinstance(metrics.get(k), float) else metrics.get(k) for k in keys]
    table = tabulate([row], headers=keys, tablefmt="github")
    return f"{title}\n{table}" if title else table
