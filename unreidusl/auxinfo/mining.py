"""Training- and test-side auxiliary information mined from the samples' own metadata: TOC
(``meta.overlap_matrix``), SCP (``[cam_a == cam_b]``, never stored) and STS (the transit model's
plausibility, when one is given)."""
from __future__ import annotations

from typing import NamedTuple, Optional

import numpy as np

from .meta import TrackletMeta, overlap_matrix
from .transit import TransitModel, TransitPlausibility

__all__ = ["TrainAux", "mine_train_aux", "mine_test_aux", "camera_pairs", "model_pairs"]


class TrainAux(NamedTuple):
    """Training-side auxiliary information for N tracklets in dataset order.

    ``cannot_link``: N x N boolean CSR (TOC) or None; ``same_camera`` / ``plausibility``: callables
    ``(rows, cols) -> values`` for pairs, or None; ``transit``: the STS model when known; ``meta``."""
    meta: TrackletMeta
    cannot_link: Optional[sp.csr_matrix]
    same_camera: Optional[object]
    plausibility: Optional[object]
    transit: Optional[TransitModel]
    source: str


def camera_pairs(camids):
    return lambda r, c: camids[r] == camids[c]


def model_pairs(model, meta):
    return lambda r, c: model.pairs(meta, r, meta, c)


def mine_train_aux(samples, transit: Optional[TransitModel] = None) -> TrainAux:
    """TOC / SCP (and STS when a ``transit`` model is given) from the samples' metadata."""
    meta = TrackletMeta.from_samples(samples)
    toc = overlap_matrix(meta) if meta.has_time else None
    plaus = model_pairs(transit, meta) if transit is not None else None
    return TrainAux(meta, toc, camera_pairs(meta.camids), plaus, transit, "dataset metadata")


def mine_test_aux(query, gallery, transit: Optional[TransitModel] = None) -> dict:
    """Q x G ``overlap`` (TOC, sparse) and lazy ``plausibility`` (STS, when ``transit`` is given),
    as ``ReidEvaluator(..., overlap=, plausibility=)`` takes them.  SCP comes from the camera ids."""
    q, g = TrackletMeta.from_samples(query), TrackletMeta.from_samples(gallery)
    out = {"overlap": overlap_matrix(q, g) if q.has_time and g.has_time else None,
           "plausibility": None if transit is None else TransitPlausibility(transit, q, g)}
    return out
