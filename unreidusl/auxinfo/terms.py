"""The auxiliary-information terms of AuxUSLReID as plain array formulas, shared by the test side
(``test_time.AuxTerms``, query x gallery chunks) and the training side (:func:`apply_aux_terms`,
the stored entries of the sparse N x N distance).

Applied in this order to distances ``d`` (any array of pairs), each term only when given:

* **TOC** (time-overlap constraint, ``blocked`` in {0, 1}): ``d = +inf`` where blocked
  (``penalty = inf``) or ``d <- d + penalty * blocked`` (AuxUSLReID's test side uses 1000).
* **SCP** (same-camera penalty, ``same`` S in {0, 1}): ``d <- d + lambda_c * S``.
* **STS** (spatio-temporal score, ``plausibility`` P in [0, 1]):
  ``d <- d * (1 + lambda_s * exp(-gamma * P))``; it scales the SCP term too.  P = 1 gives the
  factor ``1 + lambda_s e^-gamma`` (about 1), P = 0 gives ``1 + lambda_s`` (1.6 by default).

The formula functions work on numpy arrays in place.
"""
import math

import numpy as np
import scipy.sparse as sp

from ..cluster.sparse_rows import row_blocks

__all__ = ["apply_toc", "apply_scp", "apply_sts", "sts_factor", "apply_aux_terms"]


def sts_factor(plausibility, str_lambda, str_gamma):
    """``1 + lambda_s * exp(-gamma * P)`` (float64 array)."""
    p = np.asarray(plausibility, dtype=np.float64)
    return 1.0 + float(str_lambda) * np.exp(-float(str_gamma) * p)


def apply_toc(d, blocked, penalty=math.inf):
    """In place: ``d[blocked] = inf`` for an infinite ``penalty``, else ``d += penalty * blocked``."""
    blocked = np.asarray(blocked) != 0
    if math.isinf(float(penalty)):
        d[blocked] = np.inf
    else:
        d += float(penalty) * blocked
    return d


def apply_scp(d, same, cce_lambda):
    """In place: ``d += lambda_c * S``."""
    d += float(cce_lambda) * np.asarray(same, dtype=d.dtype)
    return d


def apply_sts(d, plausibility, str_lambda, str_gamma):
    """In place: ``d *= 1 + lambda_s * exp(-gamma * P)``."""
    d *= sts_factor(plausibility, str_lambda, str_gamma).astype(d.dtype, copy=False)
    return d


def apply_aux_terms(dist, same_camera=None, cce_lambda: float = 0.006, plausibility=None,
                    str_lambda: float = 0.6, str_gamma: float = 8.0, block: int = 1 << 22):
    """Training-side SCP then STS (AuxUSLReID's training terms) on a copy of the N x N distance:

        D' = (D + lambda_c * S) * (1 + lambda_s * exp(-gamma * P))

    ``same_camera`` / ``plausibility`` are callables ``(rows, cols) -> S or P`` of index pairs
    (None = term off); the formulas above, shared with the test side.

    Sparse D (unstored = 1): only the stored entries are modified.  Exactness: with
    ``lambda_c, lambda_s >= 0`` an unstored pair's true value ``(1 + lambda_c S)(1 + ...)`` is
    still >= 1, so every comparison against a threshold below 1 (eps, the ICDBSCAN relaxation
    ``|r| eps``, the eps-neighbour pairs) gives the same answer as the dense computation.  Negative
    lambdas could pull unstored pairs below the threshold and are refused for sparse input.
    Dense D: every entry, in row blocks of about ``block`` elements."""
    def modify(vals, rows, cols):
        if same_camera is not None:
            apply_scp(vals, same_camera(rows, cols), cce_lambda)
        if plausibility is not None:
            apply_sts(vals, plausibility(rows, cols), str_lambda, str_gamma)
        return vals

    if same_camera is None and plausibility is None:
        return dist
    if sp.issparse(dist):
        if (same_camera is not None and cce_lambda < 0) or (plausibility is not None
                                                              and str_lambda < 0):
            raise ValueError("SCP/STS on a sparse distance need lambda >= 0 (unstored entries "
                             "must stay >= 1)")
        out = dist.tocsr().copy()
        for r0, r1 in row_blocks(out.indptr):            # bounded temporaries for any nnz
            e0, e1 = out.indptr[r0], out.indptr[r1]
            rows = np.repeat(np.arange(r0, r1, dtype=np.int64), np.diff(out.indptr[r0:r1 + 1]))
            vals = modify(out.data[e0:e1].astype(np.float64), rows,
                          out.indices[e0:e1].astype(np.int64))
            out.data[e0:e1] = vals
        return out
    d = np.array(dist, dtype=np.result_type(np.asarray(dist).dtype, np.float32), copy=True)
    n, m = d.shape
    step = max(1, block // max(m, 1))
    for s in range(0, n, step):
        e = min(n, s + step)
        rows = np.repeat(np.arange(s, e, dtype=np.int64), m)
        cols = np.tile(np.arange(m, dtype=np.int64), e - s)
        vals = modify(d[s:e].ravel().astype(np.float64), rows, cols)
        d[s:e] = vals.reshape(e - s, m)
    return d
