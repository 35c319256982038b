"""Features -> pseudo-labels (a :class:`~unreidusl.cluster.result.ClusterResult`) with the
``CLUSTER`` options, AuxUSLReID's auxiliary terms included (docs/clustering.md).

For N training tracklets with features X, :class:`PseudoLabeler` computes, in this order:

1. ``D = distance(X)`` (``CLUSTER.DISTANCE``; sparse Jaccard by default, unstored = 1);
2. SCP (``CLUSTER.SCP``): ``D <- D + LAMBDA * [cam_i == cam_j]``;
3. STS (``CLUSTER.STS``): ``D <- D * (1 + LAMBDA * exp(-GAMMA * P_ij))``.  P comes
   from ``AUX.PATH`` when that file holds one, otherwise it is re-estimated at every
   clustering (``transit.TransitModel``) from the pairs the current model deems the same
   identity: ``i < j`` with ``D_ij <= eps`` after SCP, minus the cannot-linked pairs (eps = the
   frozen adaptive value, else a fresh adaptive value on the SCP distance, else ``CLUSTER.EPS``);
4. eps = ``CLUSTER.EPS`` or, with ``CLUSTER.ADAPTIVE``, the adaptive value (``eps.py``: rho =
   ``ADAPTIVE_RHO``; frozen after the first clustering when ``EPS_FROZEN``), times the ``eps_scale``
   of the call (the empty-cluster policy's retries), for clusterers that declare ``uses_eps``;
5. the clusterer, called with what it declares (``clusterers.Clusterer``); with
   ``CLUSTER.TOC.ENABLED`` it gets the TOC cannot-links (``DBSCAN`` is then replaced by
   ``ICDBSCAN``);
6. must-link (``CLUSTER.MUST_LINK``): the chunks of one tracklet (samples whose first frames share
   a folder and a camera, in a video dataset) take the majority label of their non-outlier chunks
   (ties: the smaller label); chunks of a tracklet that is all outliers stay outliers.

The TOC / SCP information is mined from the samples' metadata (``unreidusl.auxinfo``) and written to
``OUTPUT_DIR/auxinfo/train_aux.npz``, or read from ``AUX.PATH``; the estimated transit model is kept
as ``PseudoLabeler.transit`` (the trainer hands it to the evaluator) and saved to
``OUTPUT_DIR/auxinfo/transit.npz`` (for evaluation-only runs).
"""
from __future__ import annotations

import logging
import os
import time

import numpy as np

from ..auxinfo.files import load_train_aux, save_aux
from ..auxinfo.mining import mine_train_aux
from ..auxinfo.terms import apply_aux_terms
from ..auxinfo.test_time import transit_file
from ..auxinfo.transit import TransitModel
from .build import CLUSTERER_REGISTRY, build_clusterer, build_distance
from .eps import AdaptiveEps, adaptive_eps
from .icdbscan import eps_graph, pair_values
from .result import ClusterResult

__all__ = ["PseudoLabeler", "tracklet_groups", "apply_must_link"]

logger = logging.getLogger(__name__)


def tracklet_groups(samples) -> np.ndarray:
    """Group id per sample (-1 = alone): samples of one tracklet folder and camera.  Needs video
    samples (an image dataset keeps all its images in one folder)."""
    lengths = np.array([len(s.frames) for s in samples])
    if lengths.size and np.median(lengths) <= 1:
        raise ValueError("CLUSTER.MUST_LINK groups the chunks of one tracklet (samples whose frames "
                         "share a folder); this training set holds single images, turn it off")
    keys = [(os.path.dirname(str(s.frames[0])), int(s.camid)) for s in samples]
    _, inv, counts = np.unique(np.array([f"{d}|{c}" for d, c in keys], dtype=str),
                               return_inverse=True, return_counts=True)
    groups = np.where(counts[inv] > 1, inv, -1).astype(np.int64)
    return groups


def apply_must_link(labels, groups) -> np.ndarray:
    """Majority label per group (see module docstring, step 6); labels renumbered 0..C-1."""
    labels = np.asarray(labels, np.int64).copy()
    groups = np.asarray(groups, np.int64)
    sel = (groups >= 0) & (labels >= 0)
    if sel.any():
        g, lab = groups[sel], labels[sel]
        pair, counts = np.unique(g * (labels.max() + 1) + lab, return_counts=True)
        pg, pl = np.divmod(pair, labels.max() + 1)
        order = np.lexsort((pl, -counts, pg))               # per group: most votes, then label
        first = order[np.r_[True, pg[order][1:] != pg[order][:-1]]]
        winner = np.full(groups.max() + 1, -1, np.int64)
        winner[pg[first]] = pl[first]
        member = groups >= 0
        won = member.copy()
        won[member] = winner[groups[member]] >= 0
        labels[won] = winner[groups[won]]
    valid = labels >= 0
    if valid.any():
        _, labels[valid] = np.unique(labels[valid], return_inverse=True)
    return labels


class PseudoLabeler:
    """``result = PseudoLabeler(cfg, samples, output_dir)(features)``: a ``ClusterResult`` (module
    docstring) with, for distance-based clusterers, the step-1 ``distance``."""

    def __init__(self, cfg, samples, output_dir: str = "") -> None:
        self.cfg, self.samples, self.output_dir = cfg, list(samples), output_dir
        c = cfg.CLUSTER
        if c.TOC.ENABLED and c.NAME == "DBSCAN":
            self.clusterer = CLUSTERER_REGISTRY.get("ICDBSCAN")(cfg)
        else:
            self.clusterer = build_clusterer(cfg)
        on_features = self.clusterer.input_kind == "features"
        if on_features and (c.SCP.ENABLED or c.STS.ENABLED or c.TOC.ENABLED or c.ADAPTIVE):
            raise ValueError(f"CLUSTER.NAME={c.NAME} clusters the features; CLUSTER.SCP, STS, TOC and "
                             f"ADAPTIVE need a distance-based clusterer")
        if c.ADAPTIVE and not self.clusterer.uses_eps:
            raise ValueError(f"CLUSTER.ADAPTIVE sets the clusterer's eps, but {c.NAME} has none")
        if c.RELIABILITY_EPS_GAP > 0 and not self.clusterer.uses_eps:
            raise ValueError(f"CLUSTER.RELIABILITY_EPS_GAP re-clusters at eps ± gap, but {c.NAME} has no eps; "
                             f"set it to 0 or use DBSCAN")
        # 3C's clustering warm-up: CLUSTER.WARMUP_NAME before epoch CLUSTER.WARMUP_EPOCHS,
        # CLUSTER.NAME from then on (``set_epoch`` switches)
        self.main_clusterer = self.clusterer
        self.warmup_clusterer = CLUSTERER_REGISTRY.get(c.WARMUP_NAME)(cfg) if c.WARMUP_EPOCHS > 0 else None
        needs_distance = not on_features or (
            self.warmup_clusterer is not None and self.warmup_clusterer.input_kind != "features")
        self.distance = build_distance(cfg) if needs_distance else None
        self.eps = AdaptiveEps(c.ADAPTIVE_RHO, c.EPS_FROZEN) if c.ADAPTIVE else None
        self.groups = tracklet_groups(self.samples) if c.MUST_LINK else None
        self.transit = None
        self._aux = None

    @property
    def aux(self):
        """Training aux information (loaded or mined once)."""
        if self._aux is None:
            c = self.cfg.CLUSTER
            a = self.cfg.AUX
            if a.PATH:
                self._aux = load_train_aux(a.PATH, self.samples, a.ALLOW_PICKLE)
            else:
                self._aux = mine_train_aux(self.samples)
                if self.output_dir:
                    path = os.path.join(self.output_dir, "auxinfo", "train_aux.npz")
                    save_aux(path, "train", {"train": self._aux.meta}, self._aux.cannot_link)
            aux = self._aux
            timeless = ("the training samples carry no timestamps (e.g. MARS file names have "
                        "no time); give AUX.PATH")
            if c.TOC.ENABLED and aux.cannot_link is None:
                raise ValueError(f"CLUSTER.TOC.ENABLED needs time-overlap constraints: {timeless}")
            if c.STS.ENABLED and aux.plausibility is None and not aux.meta.has_time:
                raise ValueError(f"CLUSTER.STS.ENABLED needs tracklet time spans: {timeless}")
            n_cl = 0 if aux.cannot_link is None else aux.cannot_link.nnz
            logger.info("Auxiliary information from %s: %d tracklets, %d cannot-link pairs",
                        aux.source, len(aux.meta), n_cl // 2)
        return self._aux

    def _pair_eps(self, dist) -> float:
        """The eps of the STS estimator's same-identity pairs (module docstring, step 3)."""
        c = self.cfg.CLUSTER
        if self.eps is None:
            return float(c.EPS)
        if self.eps.value is not None and self.eps.frozen:
            return self.eps.value
        return adaptive_eps(dist, self.eps.rho)

    def set_epoch(self, epoch: int) -> None:
        """Select the warm-up clusterer for epochs < CLUSTER.WARMUP_EPOCHS, else CLUSTER.NAME."""
        warm = self.warmup_clusterer is not None and epoch < self.cfg.CLUSTER.WARMUP_EPOCHS
        self.clusterer = self.warmup_clusterer if warm else self.main_clusterer

    def _max_dist(self, eps_scale: float):
        """When eps is known before the distance is computed (fixed, or frozen adaptive), the
        distance need store only the pairs that can matter (None: every pair below 1). Exact: SCP
        and STS only increase distances (λ ≥ 0), and ICDBSCAN's relaxation looks at most
        |RELAXED|·eps far."""
        if not self.distance.prunable or not self.clusterer.uses_eps:   # e.g. HDC reads every D < 1
            return None
        c = self.cfg.CLUSTER
        if self.eps is None:
            eps = float(c.EPS)
        else:
            eps = self.eps.value if self.eps.frozen else None
        reach = max(1.0, abs(c.TOC.RELAXED)) if c.TOC.ENABLED else 1.0
        return None if eps is None else (eps * max(1.0, eps_scale) + c.RELIABILITY_EPS_GAP) * reach

    def estimate_transit(self, dist) -> TransitModel:
        """STS model from the eps-neighbour pairs of ``dist`` that are not cannot-linked."""
        c, aux = self.cfg.CLUSTER, self.aux
        eps = self._pair_eps(dist)
        indptr, cols = eps_graph(dist, eps)                  # pairs with D <= eps (+ self)
        rows = np.repeat(np.arange(len(indptr) - 1, dtype=np.int64), np.diff(indptr))
        keep = rows < cols
        rows, cols = rows[keep], cols[keep].astype(np.int64)
        if aux.cannot_link is not None and rows.size:
            free = pair_values(aux.cannot_link, rows, cols, fill=0.0) == 0
            rows, cols = rows[free], cols[free]
        self.transit = TransitModel.estimate(aux.meta, rows, cols, bin_size=c.STS.BIN,
                                             sigma=c.STS.SIGMA, prior=c.STS.PRIOR)
        if self.output_dir:
            self.transit.save(transit_file(self.output_dir))
        return self.transit

    def __call__(self, features, dist=None, eps_scale: float = 1.0) -> ClusterResult:
        """The clustering of ``features``; ``dist`` = a precomputed step-1 distance (then
        ``features`` is only used by feature clusterers), e.g. to compare options on one distance;
        ``eps_scale`` multiplies this call's eps (the empty-cluster policy's retries)."""
        c, clusterer = self.cfg.CLUSTER, self.clusterer
        start = time.perf_counter()
        if clusterer.input_kind == "features":
            result = clusterer(None, features=features)
        else:
            if dist is None:
                dist = self.distance(features, max_dist=self._max_dist(eps_scale))
            step1 = dist  # e.g. for NCPLR's neighbour graph
            if c.SCP.ENABLED:
                dist = apply_aux_terms(dist, same_camera=self.aux.same_camera,
                                       cce_lambda=c.SCP.LAMBDA)
            if c.STS.ENABLED:
                plaus = self.aux.plausibility
                if plaus is None:
                    model, meta = self.estimate_transit(dist), self.aux.meta
                    plaus = lambda r, cc: model.pairs(meta, r, meta, cc)  # noqa: E731
                dist = apply_aux_terms(dist, plausibility=plaus, str_lambda=c.STS.LAMBDA,
                                       str_gamma=c.STS.GAMMA)
            kwargs = {}
            if clusterer.uses_eps:
                kwargs["eps"] = (self.eps(dist) if self.eps is not None else float(c.EPS)) * eps_scale
            if clusterer.uses_cannot_link and c.TOC.ENABLED:
                kwargs["cannot_link"] = self.aux.cannot_link
            if clusterer.needs_features:
                kwargs["features"] = features
            result = clusterer(dist, **kwargs).replace(distance=step1)
            if c.RELIABILITY_EPS_GAP > 0:
                gap = c.RELIABILITY_EPS_GAP
                tight = clusterer(dist, **dict(kwargs, eps=kwargs["eps"] - gap)).labels
                loose = clusterer(dist, **dict(kwargs, eps=kwargs["eps"] + gap)).labels
                result = result.replace(labels_tight=tight, labels_loose=loose)
        if self.groups is not None:
            result = result.replace(labels=apply_must_link(result.labels, self.groups))
        result.stats["seconds"] = time.perf_counter() - start
        return result

    def state_dict(self) -> dict:
        return {} if self.eps is None else self.eps.state_dict()

    def load_state_dict(self, state: dict) -> None:
        if self.eps is not None:
            self.eps.load_state_dict(state)
