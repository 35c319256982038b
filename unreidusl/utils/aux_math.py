"""The auxiliary-information terms of AuxUSLReID as plain array formulas, shared by the test side
(``evaluation/aux_distance.py``, query x gallery chunks) and the
training side (``cluster/distances.py``, the stored entries of the sparse N x N distance).

Applied in this order to distances ``d`` (any array of pairs), each term only when given:

* **TOC** (time-overlap constraint, ``blocked`` in {0, 1}): ``d = +inf`` where blocked
  (``penalty = inf``) or ``d <- d + penalty * blocked`` (AuxUSLReID's test side uses 1000).
* **SCP** (same-camera penalty, ``same`` S in {0, 1}): ``d <- d + lambda_c * S``.
* **STS** (spatio-temporal score, ``plausibility`` P in [0, 1]):
  ``d <- d * (1 + lambda_s * exp(-gamma * P))``; it scales the SCP term too.  P = 1 gives the
  factor ``1 + lambda_s e^-gamma`` (about 1), P = 0 gives ``1 + lambda_s`` (1.6 by default).

No numpy import beyond the arrays passed in: the functions work on numpy arrays in place.
"""
import math

import numpy as np

__all__ = ["apply_toc", "apply_scp", "apply_sts", "sts_factor"]


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
