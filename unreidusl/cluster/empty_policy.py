"""What training does with a degenerate clustering, i.e. every sample an outlier or all of them in one
cluster (``CLUSTER.EMPTY_POLICY``):

* ``error`` (default): stop with a message naming the clusterer, eps, MIN_SAMPLES and the keys to change;
* ``keep``: train this epoch on the previous pseudo-labels (an error at the first clustering);
* ``relax``: re-cluster with eps × f^k (all outliers) or eps / f^k (one cluster), k = 1..R, f =
  ``EMPTY_EPS_FACTOR``, R = ``EMPTY_MAX_RETRIES``, keeping the first non-degenerate result; an error
  with the eps values tried when none is.  The relaxed eps holds for that clustering only.
"""
import logging
from typing import Optional

import numpy as np

__all__ = ["PseudoLabelError", "EmptyClusterPolicy", "POLICIES"]

logger = logging.getLogger(__name__)

POLICIES = ("error", "keep", "relax")


class PseudoLabelError(RuntimeError):
    """Clustering produced no usable pseudo-identity."""


def _problem(labels: np.ndarray) -> str:
    """"" for a usable clustering, else what is wrong with it."""
    clusters = len(np.unique(labels[labels >= 0]))
    if clusters == 0:
        return f"labelled all {len(labels)} training samples as outliers"
    if clusters == 1:
        return f"put all {int((labels >= 0).sum())} non-outlier training samples into one cluster"
    return ""


class EmptyClusterPolicy:
    """``result = EmptyClusterPolicy(cfg)(labeler, features, previous_labels)`` (module docstring):
    a ``ClusterResult``; ``labeler`` is a ``pipeline.PseudoLabeler``."""

    def __init__(self, cfg) -> None:
        c = cfg.CLUSTER
        if c.EMPTY_POLICY not in POLICIES:
            raise ValueError(f"CLUSTER.EMPTY_POLICY must be one of {POLICIES}, got {c.EMPTY_POLICY!r}")
        if c.EMPTY_EPS_FACTOR <= 1.0 or c.EMPTY_MAX_RETRIES < 1:
            raise ValueError(f"CLUSTER.EMPTY_EPS_FACTOR must be > 1 and CLUSTER.EMPTY_MAX_RETRIES >= 1, got "
                             f"{c.EMPTY_EPS_FACTOR} and {c.EMPTY_MAX_RETRIES}")
        self.policy, self.min_samples = c.EMPTY_POLICY, c.MIN_SAMPLES
        self.factor, self.retries = float(c.EMPTY_EPS_FACTOR), int(c.EMPTY_MAX_RETRIES)

    def __call__(self, labeler, features, previous: Optional[np.ndarray]):
        result = labeler(features)
        problem = _problem(result.labels)
        if not problem:
            return result
        eps = result.eps
        what = (f"{type(labeler.clusterer).__name__} {problem} "
                f"(eps={'n/a' if eps is None else f'{eps:.4g}'}, CLUSTER.MIN_SAMPLES={self.min_samples})")
        if self.policy == "keep" and previous is not None:
            logger.warning("%s: training on the previous pseudo-labels (CLUSTER.EMPTY_POLICY keep)", what)
            return result.replace(labels=previous, core=None, centroid_labels=None, labels_tight=None,
                                  labels_loose=None)
        if self.policy == "relax" and eps is not None:
            return self._relax(labeler, features, what, "outliers" in problem, [eps])
        name = type(labeler.clusterer).__name__
        fix = ("Increase CLUSTER.EPS (or CLUSTER.ADAPTIVE_RHO) or decrease CLUSTER.MIN_SAMPLES"
               if "outliers" in problem else "Decrease CLUSTER.EPS (or CLUSTER.ADAPTIVE_RHO)")
        if self.policy == "keep":
            fix += "; CLUSTER.EMPTY_POLICY keep has no previous pseudo-labels at the first clustering"
        elif self.policy == "relax":
            fix += f"; CLUSTER.EMPTY_POLICY relax needs a clusterer with an eps, not {name}"
        else:
            fix += ", or set CLUSTER.EMPTY_POLICY to keep or relax"
        raise PseudoLabelError(f"{what}. {fix}.")

    def _relax(self, labeler, features, what: str, widen: bool, tried: list):
        for k in range(1, self.retries + 1):
            result = labeler(features, eps_scale=self.factor ** (k if widen else -k))
            tried.append(result.eps)
            if not _problem(result.labels):
                logger.warning("%s: re-clustered with eps %.4g (CLUSTER.EMPTY_POLICY relax)", what,
                               result.eps)
                return result
        raise PseudoLabelError(
            f"{what}; CLUSTER.EMPTY_POLICY relax tried eps {', '.join(f'{e:.4g}' for e in tried)} without "
            f"a usable clustering. Raise CLUSTER.EMPTY_MAX_RETRIES or EMPTY_EPS_FACTOR, or fix CLUSTER.EPS "
            f"/ MIN_SAMPLES.")
