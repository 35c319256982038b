"""MARS's query_IDX.mat with repeated or fractional rows is refused naming the file (a repeated row
would put one tracklet twice among the queries, a fractional one would be truncated silently)."""
import os
import shutil

import numpy as np
import pytest
from scipy.io import loadmat, savemat

from unreidusl.data import DatasetFormatError
from unreidusl.data.datasets import MARS
from unreidusl.data.synthetic import make_synthetic


@pytest.fixture(scope="module")
def mars_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("mars")
    make_synthetic(root=str(root / "gen"), fmt="mars", seed=0, preset="tiny")
    return root / "gen"


@pytest.mark.parametrize("change,needle", [
    (lambda q: np.concatenate([q, q[:2]]), "more than once"),
    (lambda q: q.astype(np.float64) + 0.5, "whole row numbers"),
])
def test_bad_query_idx_is_refused(mars_root, tmp_path, change, needle):
    root = tmp_path / "d"
    shutil.copytree(mars_root, root)
    path = os.path.join(root, "MARS", "info", "query_IDX.mat")
    qidx = loadmat(path)["query_IDX"].ravel()
    assert len(MARS(str(root)).query) > 0                     # the untouched file loads
    savemat(path, {"query_IDX": change(qidx).reshape(1, -1)})
    with pytest.raises(DatasetFormatError, match=needle) as e:
        MARS(str(root))
    assert path in str(e.value)
