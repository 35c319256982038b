"""What a clustering hands to the model: :class:`ClusterResult`."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Dict, Optional

import numpy as np

__all__ = ["ClusterResult"]


@dataclass
class ClusterResult:
    """One clustering of the N training samples (in training-list order).

    ``labels``: int64 [N], clusters 0..C-1, -1 = outlier.  The clusterer fills what it knows: the
    ``eps`` it used, the DBSCAN ``core`` mask, HDC's ``centroid_labels`` (the same numbering without
    the peripheral samples, for the memory initialisation).  ``PseudoLabeler`` adds the step-1
    ``distance`` (N x N, dense or sparse; NCPLR's neighbour graph), the clusterings at eps ∓ gap
    (``labels_tight`` / ``labels_loose``, ``CLUSTER.RELIABILITY_EPS_GAP``) and ``stats``
    (``seconds``); ``PseudoLabelHook`` adds the clustering ``features`` [N, d] and the 0-based
    ``camids`` [N] before it passes the whole result to ``model.reset_pseudo_labels(result)``.
    """

    labels: np.ndarray
    eps: Optional[float] = None
    core: Optional[np.ndarray] = None
    centroid_labels: Optional[np.ndarray] = None
    labels_tight: Optional[np.ndarray] = None
    labels_loose: Optional[np.ndarray] = None
    distance: Any = None
    features: Any = None
    camids: Any = None
    stats: Dict[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.labels = np.asarray(self.labels, dtype=np.int64)

    @property
    def num_clusters(self) -> int:
        return int(self.labels.max(initial=-1)) + 1

    def replace(self, **changes) -> "ClusterResult":
        """A copy with ``changes`` (``dataclasses.replace``)."""
        return dataclasses.replace(self, **changes)
