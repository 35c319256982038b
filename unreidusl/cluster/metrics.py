"""Pseudo-label quality against ground truth (outliers count as singleton clusters)."""
from typing import Dict

import numpy as np
import scipy.sparse as sp
from sklearn.metrics import normalized_mutual_info_score


def _singletons(labels: np.ndarray) -> np.ndarray:
    """Give every outlier (−1) its own new label."""
    labels = np.asarray(labels, dtype=np.int64).copy()
    noise = labels < 0
    labels[noise] = labels.max(initial=-1) + 1 + np.arange(noise.sum())
    return labels


def _pairs(counts: np.ndarray) -> float:
    counts = counts.astype(np.float64)
    return float((counts * (counts - 1) / 2).sum())


def cluster_summary(pred: np.ndarray) -> Dict[str, float]:
    pred = np.asarray(pred)
    return {"num_clusters": int(len(np.unique(pred[pred >= 0]))),
            "outlier_ratio": float((pred < 0).mean()) if len(pred) else 0.0}


def cluster_quality(pred: np.ndarray, truth: np.ndarray) -> Dict[str, float]:
    """Pairwise precision = TP/|pred pairs|, recall = TP/|true pairs|, F = harmonic mean, and NMI.

    TP = Σ_{c,t} C(n_ct, 2) over the contingency table n_ct of predicted cluster c vs identity t.
    """
    num_clusters = cluster_summary(pred)["num_clusters"]
    pred, truth = _singletons(pred), np.asarray(truth, dtype=np.int64)
    if pred.shape != truth.shape:
        raise ValueError(f"pred {pred.shape} and truth {truth.shape} differ in shape")
    _, p_idx = np.unique(pred, return_inverse=True)
    _, t_idx = np.unique(truth, return_inverse=True)
    table = sp.coo_matrix((np.ones(len(pred)), (p_idx, t_idx))).tocsr()
    tp = _pairs(table.data)
    pred_pairs = _pairs(np.bincount(p_idx))
    true_pairs = _pairs(np.bincount(t_idx))
    precision = tp / pred_pairs if pred_pairs else 0.0
    recall = tp / true_pairs if true_pairs else 0.0
    f = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    n_true = len(np.unique(truth))
    return {
        "pairwise_precision": precision,
        "pairwise_recall": recall,
        "pairwise_f": f,
        "nmi": float(normalized_mutual_info_score(truth, pred)),
        "cluster_count_ratio": num_clusters / n_true if n_true else 0.0,
    }
