"""Query/gallery evaluation of a model: features → chunked distances → mAP / CMC / mINP.

Test distance, built from ``cfg.TEST`` and computed per chunk of queries (never Q x G at once):

    D = metric(q, g)                                   (TEST.METRIC)
    D = (1 - λ) · Jaccard + λ · D / rowmax              (TEST.RERANK.ENABLED, see rerank.py)
    D = aux(D): TOC → +inf, SCP D += λ_c·S, STS D ⊙= 1 + λ_s·exp(−γ·P)  (unreidusl.auxinfo.test_time)

The auxiliary terms act on the final (re-ranked) distance; AuxUSLReID applies them before its
re-ranking, which then mixes constrained Q x G with unconstrained Q x Q / G x G distances.
"""
import logging
import os
from typing import Dict, Sequence

import numpy as np
import torch
from tabulate import tabulate

from ..data import Sample, build_inference_loader
from ..utils import comm
from ..auxinfo.test_time import AuxTerms, CameraMatch
from ..cluster.ann import AnnParams
from .chunked_distance import ChunkedDistance
from .extract import extract_features
from .rank import evaluate_features
from .rerank import ReRankedDistance

logger = logging.getLogger(__name__)


def parse_camera_free(value):
    """``TEST.CAMERA_FREE`` → None ("auto"), True or False."""
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text == "auto":
        return None
    if text in ("true", "1", "yes"):
        return True
    if text in ("false", "0", "no"):
        return False
    raise ValueError(f"TEST.CAMERA_FREE must be 'auto', 'true' or 'false', got {value!r}")


def _to_metrics(res) -> Dict[str, float]:
    cmc = res["cmc"]
    metrics = {"mAP": 100 * res["mAP"], "mINP": 100 * res["mINP"]}
    for r in (1, 5, 10):
        metrics[f"Rank-{r}"] = 100 * float(cmc[min(r, len(cmc)) - 1])
    metrics["evaluator"] = res["impl"]
    return metrics


class ReidEvaluator:
    """Evaluates a model on ``query`` / ``gallery`` with the options of ``cfg.TEST``.

    ``overlap`` (TOC), ``same_camera`` (SCP; default: from the camera ids) and ``plausibility``
    (STS) are Q x G matrices in query / gallery order (dense, scipy sparse or lazy, see
    ``auxinfo.test_time``); they are used only when their TEST switch is on.
    """

    def __init__(self, cfg, query: Sequence[Sample], gallery: Sequence[Sample], overlap=None,
                 same_camera=None, plausibility=None) -> None:
        self.cfg = cfg
        self.query, self.gallery = list(query), list(gallery)
        if not self.query or not self.gallery:
            raise ValueError(f"Cannot evaluate: {len(self.query)} query and {len(self.gallery)} "
                             f"gallery samples")
        self.q_pids = np.array([s.pid for s in self.query])
        self.g_pids = np.array([s.pid for s in self.gallery])
        self.q_cams = np.array([s.camid for s in self.query])
        self.g_cams = np.array([s.camid for s in self.gallery])
        self.camera_free = parse_camera_free(cfg.TEST.CAMERA_FREE)
        self.set_aux(overlap, same_camera, plausibility)
        self.loader = build_inference_loader(cfg, self.query + self.gallery, cfg.TEST.IMS_PER_BATCH,
                                             rank=comm.get_rank(), world_size=comm.get_world_size())

    def set_aux(self, overlap=None, same_camera=None, plausibility=None) -> None:
        """Set the auxiliary matrices (checked against the enabled switches now)."""
        t, shape = self.cfg.TEST, (len(self.query), len(self.gallery))
        missing = [f"TEST.{key}.ENABLED is True but no {arg} matrix was given (ReidEvaluator(..., "
                   f"{arg}=M), M of shape (num_query, num_gallery) = {shape})"
                   for key, arg, m in (("TOC", "overlap", overlap), ("STS", "plausibility", plausibility))
                   if t[key].ENABLED and m is None]
        if missing:
            raise ValueError("; ".join(missing))
        if t.SCP.ENABLED and same_camera is None:
            same_camera = CameraMatch(self.q_cams, self.g_cams)
        self.aux = None
        if t.TOC.ENABLED or t.SCP.ENABLED or t.STS.ENABLED:
            self.aux = AuxTerms(
                shape[0], shape[1], overlap=overlap if t.TOC.ENABLED else None,
                same_camera=same_camera if t.SCP.ENABLED else None,
                plausibility=plausibility if t.STS.ENABLED else None,
                cce_lambda=t.SCP.LAMBDA, str_lambda=t.STS.LAMBDA, str_gamma=t.STS.GAMMA,
                overlap_penalty=t.TOC.PENALTY)

    def evaluate(self, model: torch.nn.Module) -> Dict[str, float]:
        """Features extracted by all ranks (one shard each); metrics computed by rank 0 and broadcast."""
        feats = extract_features(model, self.loader, "query+gallery features")
        metrics = None
        if comm.is_main_process():
            metrics = self.evaluate_features(feats[: len(self.query)], feats[len(self.query):])
        return comm.broadcast_object(metrics)

    def _rank(self, qf, gf, dist_fn):
        t = self.cfg.TEST
        return evaluate_features(qf, gf, self.q_pids, self.g_pids, self.q_cams, self.g_cams,
                                 max_rank=t.MAX_RANK, metric=t.METRIC, dist_fn=dist_fn,
                                 use_cython=t.USE_CYTHON, camera_free=self.camera_free)

    def evaluate_features(self, qf, gf) -> Dict[str, float]:
        """Metrics of given query / gallery features (the part of ``evaluate`` after extraction)."""
        t = self.cfg.TEST
        if qf.shape[0] != len(self.query) or gf.shape[0] != len(self.gallery):
            raise ValueError(f"features for {qf.shape[0]} query / {gf.shape[0]} gallery items, "
                             f"expected {len(self.query)} / {len(self.gallery)}")
        dist = ChunkedDistance(qf, gf, t.METRIC, aux=self.aux)
        res = self._rank(qf, gf, dist if self.aux is not None else None)
        metrics = _to_metrics(res)
        parts = [t.METRIC] + (self.aux.active if self.aux is not None else [])
        if t.RERANK.ENABLED:
            logger.info("%s", format_metrics(metrics, "Without re-ranking:"))
            rr = ReRankedDistance(qf, gf, t.RERANK.K1, t.RERANK.K2, t.RERANK.LAMBDA, t.METRIC,
                                  t.RERANK.KNN_BACKEND, ann=AnnParams.from_cfg(self.cfg.CLUSTER.ANN))
            dist = ChunkedDistance(qf, gf, t.METRIC, base=rr, aux=self.aux)
            res = self._rank(qf, gf, dist)
            plain = {f"plain_{k}": v for k, v in metrics.items() if isinstance(v, float)}
            metrics = {**_to_metrics(res), **plain}
            parts.insert(1, "rerank")
        metrics["distance"] = "+".join(parts)
        cams = np.concatenate([self.q_cams, self.g_cams])
        camera_free = (self.camera_free if self.camera_free is not None
                       else bool(np.all(cams == cams[0])))
        metrics["camera_free"] = camera_free
        if t.VISUALIZE.ENABLED:
            self.visualize(dist, res["cmc"], metrics, t.VISUALIZE.NUM_QUERIES, camera_free)
        return metrics

    def visualize(self, dist, cmc, metrics, num_queries, camera_free, out_dir=None):
        """Rank lists and the CMC curve into ``out_dir`` (default OUTPUT_DIR/visualize)."""
        from .visualize import visualize_ranking  # noqa: PLC0415 - Pillow only when used

        out_dir = out_dir or os.path.join(self.cfg.OUTPUT_DIR, "visualize")
        title = (f"CMC ({metrics['distance']}): mAP {metrics['mAP']:.1f}%, "
                 f"R1 {metrics['Rank-1']:.1f}%")
        return visualize_ranking(dist, self.query, self.gallery, cmc, out_dir, num_queries,
                                 camera_free=camera_free, title=title)


def format_metrics(metrics: Dict[str, float], title: str = "") -> str:
    keys = ["mAP", "Rank-1", "Rank-5", "Rank-10", "mINP", "evaluator"]
    row = [f"{metrics[k]:.2f}" if isinstance(metrics.get(k), float) else metrics.get(k)
           for k in keys]
    table = tabulate([row], headers=keys, tablefmt="github")
    return f"{title}\n{table}" if title else table
