"""Per-sample cluster reliability from labellings at several eps (SpCL, CDSM).

Counts instead of N×N label-equality matrices: with S(i) the samples that
share i's label, |S ∩ S'|(i) = #{j : y_j = y_i and y'_j = y'_i} and |S ∪ S'| = |S| + |S'| − |S ∩ S'|.
"""
import numpy as np

__all__ = ["label_iou", "cluster_relative_gate", "training_list_gate", "INDEXING"]

# How the gate of a pseudo-labelled sample reads the scores (``training_list_gate``).
INDEXING = ("aligned", "reference")


def _with_singletons(labels: np.ndarray) -> np.ndarray:
    """Outliers (−1) become their own clusters (ids above every real label)."""
    labels = np.asarray(labels, dtype=np.int64).copy()
    noise = labels < 0
    labels[noise] = labels.max(initial=-1) + 1 + np.arange(int(noise.sum()))
    return labels


def label_iou(labels: np.ndarray, other: np.ndarray) -> np.ndarray:
    """IoU(S(i), S'(i)) of every sample's cluster in two labellings of the same samples (outliers are
    singletons in both), in O(N log N)."""
    a, b = _with_singletons(labels), _with_singletons(other)
    if a.shape != b.shape:
        raise ValueError(f"labellings differ in length: {a.shape} vs {b.shape}")
    _, ia, size_a = np.unique(a, return_inverse=True, return_counts=True)
    _, ib, size_b = np.unique(b, return_inverse=True, return_counts=True)
    _, ipair, inter = np.unique(ia.astype(np.int64) * (ib.max(initial=0) + 1) + ib,
                                return_inverse=True, return_counts=True)
    inter = inter[ipair]
    return inter / (size_a[ia] + size_b[ib] - inter)


def cluster_relative_gate(labels: np.ndarray, scores, ratio: float) -> np.ndarray:
    """CDSM's reliability gate: sample i of cluster k passes if for any score R in ``scores``,
    R(i) ≥ ratio · max_{j ∈ k} R(j). Outliers (−1) never pass."""
    labels = np.asarray(labels, dtype=np.int64)
    keep = labels >= 0
    passed = np.zeros(len(labels), dtype=bool)
    if not keep.any():
        return passed
    num = labels[keep].max() + 1
    for score in scores:
        best = np.zeros(num)
        np.maximum.at(best, labels[keep], np.asarray(score)[keep])
        passed[keep] |= np.asarray(score)[keep] >= ratio * best[labels[keep]]
    return passed


def training_list_gate(labels: np.ndarray, scores, ratio: float, indexing: str = "aligned") -> np.ndarray:
    """The gate of every pseudo-labelled sample, in the order of the outlier-free training list (the
    position a batch's ``index`` refers to). ``labels`` and each score in ``scores`` cover the full
    list, outliers (−1) included; thresholds are ``ratio`` × the maximum of each score over the
    members of each cluster (``cluster_relative_gate``).

    * ``"aligned"``: the p-th training sample (full-list sample ``keep[p]``) passes on its own scores.
    * ``"reference"``: CDSM's released code looks the scores up at position p of the *full* list, so
      from the first outlier on, the p-th training sample is judged on the scores of the full-list
      sample p (an earlier image, possibly an outlier) against the thresholds of its own cluster."""
    if indexing not in INDEXING:
        raise ValueError(f"MODEL.MEMORY.RELIABILITY_INDEXING must be one of {INDEXING}, got {indexing!r}")
    labels = np.asarray(labels, dtype=np.int64)
    keep = labels >= 0
    if indexing == "aligned":
        return cluster_relative_gate(labels, scores, ratio)[keep]
    kept = labels[keep]
    passed = np.zeros(len(kept), dtype=bool)
    if not len(kept):
        return passed
    for score in scores:
        score = np.asarray(score)
        best = np.zeros(kept.max() + 1)
        np.maximum.at(best, kept, score[keep])
        passed |= score[:len(kept)] >= ratio * best[kept]
    return passed
