"""Features -> pseudo-labels with the ``CLUSTER`` options of AuxUSLReID (spec auxuslreid.md §4.3-4.6).

For N training tracklets with features X, :class:`PseudoLabeler` computes, in this order:

1. ``D = distance(X)`` (``CLUSTER.DISTANCE``; sparse Jaccard by default, unstored = 1);
2. SCP (``CLUSTER.CCE_OPTION``): ``D <- D + CCE_LAMBDA * [cam_i == cam_j]``;
3. STS (``CLUSTER.STR_OPTION``): ``D <- D * (1 + STR_LAMBDA * exp(-STR_GAMMA * P_ij))``.  P comes
   from ``CLUSTER.AUX_PATH`` when that file holds one, otherwise it is re-estimated at every
   clustering (``transit.TransitModel``) from the pairs the current model deems the same
   identity: ``i < j`` with ``D_ij <= eps`` after SCP, minus the cannot-linked pairs (eps = the
   frozen adaptive value, else a fresh adaptive value on the SCP distance, else ``CLUSTER.EPS``);
4. eps = ``CLUSTER.EPS`` or, with ``CLUSTER.ADAPTIVE``, the adaptive value (``eps.py``: rho =
   ``ADAPTIVE_RHO``; frozen after the first clustering when ``EPS_FROZEN``);
5. the clusterer; with ``CLUSTER.ICDBSCAN_OPTION`` it gets the TOC cannot-links (``DBSCAN`` is then
   replaced by ``ICDBSCAN``);
6. must-link (``CLUSTER.MUST_LINK``): the chunks of one tracklet (samples whose first frames share
   a folder and a camera, in a video dataset) take the majority label of their non-outlier chunks
   (ties: the smaller label); chunks of a tracklet that is all outliers stay outliers.

The TOC / SCP information is mined from the samples' metadata (``aux_info.py``) and written to
``OUTPUT_DIR/aux/train_aux.npz``, or read from ``CLUSTER.AUX_PATH``; an estimated transit model
is written to ``OUTPUT_DIR/aux/transit.npz`` (reusable on the test side).
"""
from __future__ import annotations

import logging
import os
import time

import numpy as np

from .aux_info import load_train_aux, mine_train_aux, save_aux
from .build import CLUSTERER_REGISTRY, build_clusterer, build_distance
from .distances import apply_aux_terms
from .eps import AdaptiveEps, adaptive_eps
from .icdbscan import eps_graph, pair_values
from .transit import TransitModel

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
    """``labels, info = PseudoLabeler(cfg, samples, output_dir)(features)`` (module docstring);
    ``info`` holds ``seconds``, and for distance-based clusterers ``eps`` and the step-1 ``distance``."""

    def __init__(self, cfg, samples, output_dir: str = "") -> None:
        self.cfg, self.samples, self.output_dir = cfg, list(samples), output_dir
        c = cfg.CLUSTER
        if c.ICDBSCAN_OPTION and c.NAME == "DBSCAN":
            self.clusterer = CLUSTERER_REGISTRY.get("ICDBSCAN")(cfg)
        else:
            self.clusterer = build_clusterer(cfg)
        self.on_features = getattr(self.clusterer, "input_kind", "distance") == "features"
        if self.on_features and (c.CCE_OPTION or c.STR_OPTION or c.ICDBSCAN_OPTION or c.ADAPTIVE):
            raise ValueError(f"CLUSTER.NAME={c.NAME} clusters the features; CCE_OPTION, STR_OPTION, "
                             f"ICDBSCAN_OPTION and ADAPTIVE need a distance-based clusterer")
        if c.ADAPTIVE and not hasattr(self.clusterer, "eps"):
            raise ValueError(f"CLUSTER.ADAPTIVE sets the clusterer's eps, but {c.NAME} has none")
        if c.RELIABILITY_EPS_GAP > 0 and not hasattr(self.clusterer, "eps"):
            raise ValueError(f"CLUSTER.RELIABILITY_EPS_GAP re-clusters at eps ± gap, but {c.NAME} has no eps; "
                             f"set it to 0 or use DBSCAN")
        # 3C's clustering warm-up (spec 3c-cdsm.md A.7): CLUSTER.WARMUP_NAME before epoch
        # CLUSTER.WARMUP_EPOCHS, CLUSTER.NAME from then on (``set_epoch`` switches)
        self.main_clusterer = self.clusterer
        self.warmup_clusterer = CLUSTERER_REGISTRY.get(c.WARMUP_NAME)(cfg) if c.WARMUP_EPOCHS > 0 else None
        needs_distance = not self.on_features or (
            self.warmup_clusterer is not None
            and getattr(self.warmup_clusterer, "input_kind", "distance") != "features")
        self.distance = build_distance(cfg) if needs_distance else None
        self.eps = AdaptiveEps(c.ADAPTIVE_RHO, c.EPS_FROZEN) if c.ADAPTIVE else None
        self.groups = tracklet_groups(self.samples) if c.MUST_LINK else None
        self.transit = None
        # eps multiplier of one re-clustering (CLUSTER.EMPTY_POLICY "relax", empty_policy.py)
        self.eps_scale = 1.0
        self._aux = None

    @property
    def aux(self):
        """Training aux information (loaded or mined once)."""
        if self._aux is None:
            c = self.cfg.CLUSTER
            if c.AUX_PATH:
                self._aux = load_train_aux(c.AUX_PATH, self.samples, c.ALLOW_PICKLE)
            else:
                self._aux = mine_train_aux(self.samples)
                if self.output_dir:
                    path = os.path.join(self.output_dir, "aux", "train_aux.npz")
                    save_aux(path, "train", {"train": self._aux.meta}, self._aux.cannot_link)
            aux = self._aux
            timeless = ("the training samples carry no timestamps (e.g. MARS file names have "
                        "no time); give CLUSTER.AUX_PATH")
            if c.ICDBSCAN_OPTION and aux.cannot_link is None:
                raise ValueError(f"CLUSTER.ICDBSCAN_OPTION needs time-overlap constraints: {timeless}")
            if c.STR_OPTION and aux.plausibility is None and not aux.meta.has_time:
                raise ValueError(f"CLUSTER.STR_OPTION needs tracklet time spans: {timeless}")
            n_cl = 0 if aux.cannot_link is None else aux.cannot_link.nnz
            logger.info("Auxiliary information from %s: %d tracklets, %d cannot-link pairs",
                        aux.source, len(aux.meta), n_cl // 2)
        return self._aux

    def _pair_eps(self, dist) -> float:
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
        self.on_features = getattr(self.clusterer, "input_kind", "distance") == "features"

    def _prune_distance(self) -> None:
        """When eps is known before the distance is computed (fixed, or frozen adaptive), let the
        distance store only the pairs that can matter. Exact: SCP and STS only increase distances
        (λ ≥ 0), and ICDBSCAN's relaxation looks at most |RELAXED|·eps far."""
        if not hasattr(self.distance, "max_dist"):
            return
        if not hasattr(self.clusterer, "eps"):                # e.g. HDC reads every distance < 1
            self.distance.max_dist = None
            return
        c = self.cfg.CLUSTER
        if self.eps is None:
            eps = float(c.EPS)
        else:
            eps = self.eps.value if self.eps.frozen else None
        reach = max(1.0, abs(c.ICDBSCAN_RELAXED)) if c.ICDBSCAN_OPTION else 1.0
        self.distance.max_dist = None if eps is None else (eps * max(1.0, self.eps_scale)
                                                           + c.RELIABILITY_EPS_GAP) * reach

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
        self.transit = TransitModel.estimate(aux.meta, rows, cols, bin_size=c.STR_BIN,
                                             sigma=c.STR_SIGMA, prior=c.STR_PRIOR)
        if self.output_dir:
            self.transit.save(os.path.join(self.output_dir, "aux", "transit.npz"))
        return self.transit

    def _gap_labels(self, dist, kwargs):
        """Labellings at eps − gap and eps + gap on the same distance (``CLUSTER.RELIABILITY_EPS_GAP``)."""
        eps, gap = self.clusterer.eps, self.cfg.CLUSTER.RELIABILITY_EPS_GAP
        out = []
        try:
            for value in (eps - gap, eps + gap):
                self.clusterer.eps = value
                out.append(np.asarray(self.clusterer(dist, **kwargs), dtype=np.int64))
        finally:
            self.clusterer.eps = eps
        return out

    def __call__(self, features, dist=None):
        """``(labels, info)``; ``dist`` = a precomputed step-1 distance (then ``features`` is
        only used by feature clusterers), e.g. to compare options on one distance."""
        c = self.cfg.CLUSTER
        info, start = {}, time.perf_counter()
        if self.on_features:
            labels = np.asarray(self.clusterer(features), dtype=np.int64)
        else:
            if dist is None:
                self._prune_distance()
                dist = self.distance(features)
            info["distance"] = dist  # step 1's distance, e.g. for NCPLR's neighbour graph
            if c.CCE_OPTION:
                dist = apply_aux_terms(dist, same_camera=self.aux.same_camera,
                                       cce_lambda=c.CCE_LAMBDA)
            if c.STR_OPTION:
                plaus = self.aux.plausibility
                if plaus is None:
                    model, meta = self.estimate_transit(dist), self.aux.meta
                    plaus = lambda r, cc: model.pairs(meta, r, meta, cc)  # noqa: E731
                dist = apply_aux_terms(dist, plausibility=plaus, str_lambda=c.STR_LAMBDA,
                                       str_gamma=c.STR_GAMMA)
            if self.eps is not None:
                self.clusterer.eps = self.eps(dist) * self.eps_scale
            elif hasattr(self.clusterer, "eps"):
                self.clusterer.eps = float(c.EPS) * self.eps_scale
            kwargs = {"cannot_link": self.aux.cannot_link} if c.ICDBSCAN_OPTION else {}
            if getattr(self.clusterer, "needs_features", False):
                kwargs["features"] = features
            labels = np.asarray(self.clusterer(dist, **kwargs), dtype=np.int64)
            if getattr(self.clusterer, "core_", None) is not None:
                info["core"] = self.clusterer.core_
            if c.RELIABILITY_EPS_GAP > 0:
                info["labels_tight"], info["labels_loose"] = self._gap_labels(dist, kwargs)
            if hasattr(self.clusterer, "eps"):
                info["eps"] = float(self.clusterer.eps)
            if getattr(self.clusterer, "centroid_labels", None) is not None:
                info["centroid_labels"] = self.clusterer.centroid_labels
        if self.groups is not None:
            labels = apply_must_link(labels, self.groups)
        info["seconds"] = time.perf_counter() - start
        return labels, info

    def state_dict(self) -> dict:
        return {} if self.eps is None else self.eps.state_dict()

    def load_state_dict(self, state: dict) -> None:
        if self.eps is not None:
            self.eps.load_state_dict(state)
