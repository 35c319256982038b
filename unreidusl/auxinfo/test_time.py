"""The test-time auxiliary terms: TOC / SCP / STS for query x gallery pairs, from ``AUX.PATH`` or
mined from the samples, with the STS transit model the trainer estimated at its last clustering
(passed in memory; ``EVAL_ONLY`` runs read the copy saved in ``OUTPUT_DIR/auxinfo/transit.npz``).

For a chunk of query rows (a ``b x G`` block of the distance ``D``) :class:`AuxTerms` applies, in
AuxUSLReID's order and each only when given (formulas in ``terms.py``, shared with the training
side):

* **TOC** (time-overlap constraint, ``overlap`` O, boolean): ``D[O] = +inf`` (default), or
  ``D <- D + penalty * O`` for a finite ``overlap_penalty`` (AuxUSLReID uses 1000).  Tracklets that
  overlap in time in the same camera can never be the same identity, so they rank last.
* **SCP** (same-camera penalty, ``same_camera`` S in {0, 1}): ``D <- D + lambda_c * S``.  S can
  come from the camera ids (:class:`CameraMatch`, ``S[q, g] = [cam_q == cam_g]``).
* **STS** (spatio-temporal score, ``plausibility`` P in [0, 1]):
  ``D <- D * (1 + lambda_s * exp(-gamma * P))``; it also scales the SCP term.

Matrices are Q x G in query / gallery order: dense numpy / torch arrays, scipy sparse matrices
(unstored = 0) or any object with ``shape`` and ``rows(start, stop)``; only the rows of the
current chunk are densified.
"""
from __future__ import annotations

import logging
import math
import os
from typing import Optional

import numpy as np
import scipy.sparse as sp

from .files import LEGACY_TEST, load_test_aux
from .mining import mine_test_aux
from .terms import apply_scp, apply_sts, apply_toc
from .transit import TransitModel

__all__ = ["AuxTerms", "CameraMatch", "build_test_aux", "test_transit_available", "transit_file"]

logger = logging.getLogger(__name__)


def _to_numpy(x):
    return x.detach().cpu().numpy() if hasattr(x, "detach") else np.asarray(x)


class CameraMatch:
    """Lazy same-camera indicator ``S[q, g] = [cam_q == cam_g]`` (Q x G, never materialised)."""

    def __init__(self, q_camids, g_camids):
        self.q = np.asarray(_to_numpy(q_camids)).reshape(-1)
        self.g = np.asarray(_to_numpy(g_camids)).reshape(-1)
        self.shape = (self.q.shape[0], self.g.shape[0])

    def rows(self, start, stop):
        return self.q[start:stop, None] == self.g[None, :]


class _RowSource:
    """A Q x G matrix (dense, sparse or lazy) that hands out dense row blocks."""

    def __init__(self, name, m, shape):
        if m is not None and not hasattr(m, "rows") and not sp.issparse(m):
            m = np.asarray(_to_numpy(m))
        found = tuple(getattr(m, "shape", ()))
        if found != tuple(shape):
            raise ValueError(f"{name} must have shape (num_query, num_gallery) = {tuple(shape)}, "
                             f"found {found}")
        self.name = name
        self.m = m.tocsr() if sp.issparse(m) else m

    def rows(self, start, stop):
        if hasattr(self.m, "rows"):
            return np.asarray(self.m.rows(start, stop))
        block = self.m[start:stop]
        return block.toarray() if sp.issparse(block) else block


class AuxTerms:
    """TOC / SCP / STS terms for query rows (see the module docstring for the formulas).

    Args:
        num_query, num_gallery: expected matrix shape (checked for every given matrix).
        overlap: TOC matrix, boolean-like (non-zero = the pair cannot match); None = off.
        same_camera: SCP matrix S (0/1) or a :class:`CameraMatch`; None = off.
        plausibility: STS matrix P in [0, 1]; None = off.
        cce_lambda: SCP weight ``lambda_c``.
        str_lambda, str_gamma: STS ``lambda_s`` and ``gamma``.
        overlap_penalty: ``inf`` (default) sets blocked pairs to +inf; a finite value adds it.
    """

    def __init__(self, num_query, num_gallery, overlap=None, same_camera=None, plausibility=None,
                 cce_lambda=0.006, str_lambda=0.6, str_gamma=8.0, overlap_penalty=math.inf):
        shape = (int(num_query), int(num_gallery))
        self.shape = shape
        self.toc = None if overlap is None else _RowSource("overlap (TOC)", overlap, shape)
        self.scp = None if same_camera is None else _RowSource("same_camera (SCP)", same_camera,
                                                               shape)
        self.sts = None if plausibility is None else _RowSource("plausibility (STS)",
                                                                plausibility, shape)
        self.cce_lambda, self.str_lambda = float(cce_lambda), float(str_lambda)
        self.str_gamma, self.penalty = float(str_gamma), float(overlap_penalty)
        if not self.penalty > 0:
            raise ValueError(f"overlap_penalty must be > 0, got {overlap_penalty}")
        if self.sts is not None and isinstance(self.sts.m, np.ndarray):
            p = self.sts.m
            if p.size and (np.isnan(p).any() or p.min() < 0 or p.max() > 1):
                logger.warning("STS plausibility has values outside [0, 1] (min %s, max %s)",
                               np.nanmin(p), np.nanmax(p))

    @property
    def active(self):
        """Names of the enabled terms, in application order."""
        return [n for n, t in (("TOC", self.toc), ("SCP", self.scp), ("STS", self.sts)) if t]

    def apply(self, dist, start):
        """Apply the terms in place to ``dist`` = rows ``start : start + len(dist)``; returns it."""
        if dist.shape[1] != self.shape[1] or start < 0 or start + dist.shape[0] > self.shape[0]:
            raise ValueError(f"distance rows {start}:{start + dist.shape[0]} x {dist.shape[1]} do "
                             f"not fit the auxiliary matrices of shape {self.shape}")
        stop = start + dist.shape[0]
        if self.toc is not None:
            apply_toc(dist, self.toc.rows(start, stop), self.penalty)
        if self.scp is not None:
            apply_scp(dist, self.scp.rows(start, stop), self.cce_lambda)
        if self.sts is not None:
            apply_sts(dist, self.sts.rows(start, stop), self.str_lambda, self.str_gamma)
        return dist




def _test_aux_folder(cfg) -> str:
    """AUX.PATH when it is a folder holding test-side information, else ""."""
    folder = cfg.AUX.PATH
    if not folder or not os.path.isdir(folder):
        return ""
    names = ["test_aux.npz"] + list(LEGACY_TEST.values())
    return folder if any(os.path.isfile(os.path.join(folder, f)) for f in names) else ""


def transit_file(output_dir: str) -> str:
    """Where the trainer saves the STS transit model it estimated last."""
    return os.path.join(output_dir, "auxinfo", "transit.npz")


def test_transit_available(cfg, transit: Optional[TransitModel] = None) -> bool:
    """Whether TEST.STS has a spatio-temporal model to use: ``transit`` (the trainer's, in memory),
    test information under AUX.PATH, or the model saved by the last clustering."""
    return (transit is not None or bool(_test_aux_folder(cfg))
            or os.path.isfile(transit_file(cfg.OUTPUT_DIR)))


def build_test_aux(cfg, query, gallery, transit: Optional[TransitModel] = None) -> dict:
    """``overlap`` / ``same_camera`` / ``plausibility`` keyword arguments for
    ``ReidEvaluator(cfg, query, gallery, **kw)`` (or ``evaluator.set_aux(**kw)``) following the
    ``TEST.TOC / SCP / STS`` switches: from ``AUX.PATH`` when it holds test information
    (``test_aux.npz`` or the original pickles), else mined from the samples, with the STS model
    ``transit`` (the trainer passes the one of its last clustering; None: the saved copy in
    ``OUTPUT_DIR/auxinfo/transit.npz``, if any)."""
    t = cfg.TEST
    if not (t.TOC.ENABLED or t.SCP.ENABLED or t.STS.ENABLED):
        return {}
    folder = _test_aux_folder(cfg)
    if folder:
        out = load_test_aux(folder, query, gallery, cfg.AUX.ALLOW_PICKLE)
    else:
        saved = transit_file(cfg.OUTPUT_DIR)
        if transit is None and os.path.isfile(saved):
            transit = TransitModel.load(saved)
        out = dict(mine_test_aux(query, gallery, transit), same_camera=None)
    if t.TOC.ENABLED and out["overlap"] is None:
        raise ValueError("TEST.TOC.ENABLED needs query / gallery time spans: this dataset has no "
                         "timestamps; give AUX.PATH with a test_aux.npz (tools/mine_aux.py)")
    if t.STS.ENABLED and out["plausibility"] is None:
        raise ValueError("TEST.STS.ENABLED needs a transit model: train with CLUSTER.STS.ENABLED (it "
                         "saves OUTPUT_DIR/auxinfo/transit.npz) or give AUX.PATH with one")
    return out
