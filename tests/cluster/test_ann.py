"""Approximate kNN backends (``cluster/ann.py``) and features on disk (``utils/feature_file.py``,
``extract_features(out_path=...)``): the exact backends' output contract, recall, PCA, memmaps,
the config keys and ``auto``'s switch."""
import logging

import numpy as np
import pytest
import torch

from unreidusl.cluster.ann import AnnParams, _rescore, ann_search
from unreidusl.cluster.knn import _TorchOps, _to_numpy32, knn_search
from unreidusl.config import ConfigError, get_cfg
from unreidusl.engine import setup_cfg
from unreidusl.utils.feature_file import open_feature_file

# generous parameters: every list visited, or a wide HNSW queue; candidates 3k
EXHAUSTIVE = AnnParams(nlist=16, nprobe=16, ef_search=256, refine=3.0, recall_queries=200)


def clustered(n=1200, dim=32, clusters=40, noise=0.25, seed=0):
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(clusters, dim)).astype(np.float32)
    x = centres[rng.integers(0, clusters, n)] + noise * rng.normal(size=(n, dim)).astype(np.float32)
    return np.ascontiguousarray(x, dtype=np.float32)


def exact_d2(q, x):
    q64, x64 = q.astype(np.float64), x.astype(np.float64)
    return ((q64[:, None, :] - x64[None, :, :]) ** 2).sum(-1)


def check_contract(d, i, q, x, k, self_search):
    assert d.shape == i.shape == (q.shape[0], k) and d.dtype == np.float32 and i.dtype == np.int64
    assert np.all((i >= 0) & (i < x.shape[0])) and np.all(d >= 0)
    assert all(len(set(row)) == k for row in i)                      # no neighbour twice
    assert np.all(np.diff(d, axis=1) >= 0)                           # ascending
    same = np.diff(d, axis=1) == 0                                   # equal distances: smaller index first
    assert np.all(np.diff(i, axis=1)[same] > 0)
    full = exact_d2(q, x)
    np.testing.assert_allclose(d, np.take_along_axis(full, i, 1), atol=2e-4)   # exact distances
    if self_search:   # self first at distance 0, unless identical rows tie with it (smaller index first)
        rows = np.arange(q.shape[0])
        alone = d[:, 1] > 0
        assert np.all(d[:, 0] == 0) and np.array_equal(i[alone, 0], rows[alone])


def recall(i, ref):
    return np.mean([len(set(a) & set(b)) / len(b) for a, b in zip(i, ref)])


@pytest.mark.parametrize("backend", ["faiss_ivf", "faiss_hnsw"])
def test_self_search_contract_and_recall(backend):
    x = clustered()
    d, i, info = ann_search(x, k=12, backend=backend, params=EXHAUSTIVE)
    check_contract(d, i, x, x, 12, self_search=True)
    ref_d, ref_i = knn_search(x, k=12, backend="numpy")
    assert recall(i, ref_i) >= 0.99
    assert info["backend"] == backend and info["queries"] == 200 and info["recall"] >= 0.99
    assert sorted(info["phases"]) == ["add", "pca", "recall", "rescore", "search", "train"]
    assert info["seconds"] >= sum(info["phases"].values()) - 1e-6 and info["phases"]["recall"] > 0


def test_query_database_search_contract():
    x, q = clustered(seed=1), clustered(n=150, seed=2)
    d, i, info = ann_search(q, x, k=9, backend="faiss_ivf", params=EXHAUSTIVE)
    check_contract(d, i, q, x, 9, self_search=False)
    assert recall(i, knn_search(q, x, k=9, backend="numpy")[1]) >= 0.99


def test_self_is_inserted_when_the_candidates_miss_it():
    x = clustered(n=50, dim=8)
    xn = np.einsum("ij,ij->i", x, x)
    rows = np.arange(10, 20)
    cand = np.stack([np.delete(np.arange(50), r)[:12] for r in rows])    # self never among them
    cand[:, -1] = -1                                                    # a missing candidate
    d, i = _rescore(x[rows], cand, x, xn, rows, 6)
    assert np.array_equal(i[:, 0], rows) and np.all(d[:, 0] == 0)
    full = exact_d2(x[rows], x)
    for r in range(10):
        pool = cand[r][cand[r] >= 0]
        np.testing.assert_array_equal(i[r, 1:], pool[np.argsort(full[r, pool], kind="stable")][:5])


def test_identical_rows_follow_the_exact_tie_rule():
    """50 identical rows, 8 candidates per row: the lists of the copies hold copies at distance 0,
    smaller index first, as in the exact backends (where self is then not always column 0)."""
    x = clustered(n=400)
    x[:50] = x[0]
    d, i, _ = ann_search(x, k=5, backend="faiss_ivf", params=AnnParams(nlist=8, nprobe=8, refine=1.5))
    check_contract(d, i, x, x, 5, self_search=True)
    assert np.all(d[:50] == 0) and np.all(i[:50] < 50)
    assert np.array_equal(knn_search(x, k=5, backend="numpy")[1][:50], np.tile(np.arange(5), (50, 1)))


def test_pca_candidates_are_rescored_in_the_original_space():
    x = clustered(n=1000, dim=64, clusters=25)
    ref = knn_search(x, k=10, backend="numpy")[1]
    params = AnnParams(nlist=8, nprobe=8, pca_dim=32, refine=3.0, recall_queries=0)
    d, i, info = ann_search(x, k=10, backend="faiss_ivf", params=params)
    check_contract(d, i, x, x, 10, self_search=True)
    assert "pca=32" in info["params"] and info["recall"] is None
    assert recall(i, ref) >= 0.97
    _, few, _ = ann_search(x, k=10, backend="faiss_ivf", params=AnnParams(nlist=8, nprobe=8, pca_dim=32,
                                                                         refine=1.0, recall_queries=0))
    assert recall(few, ref) < 0.9                   # the PCA order alone is worse: re-scoring matters


def test_poor_parameters_lower_the_reported_recall_which_equals_the_measured_one():
    x = clustered(n=1500, dim=16, clusters=150, noise=0.6)
    params = AnnParams(nlist=60, nprobe=1, refine=1.0, recall_queries=10 ** 6)   # all rows sampled
    _, i, info = ann_search(x, k=20, backend="faiss_ivf", params=params)
    measured = recall(i, knn_search(x, k=20, backend="numpy")[1])
    assert measured < 0.95 and info["queries"] == 1500
    assert info["recall"] == pytest.approx(measured, abs=0.01)


def test_recall_is_logged(caplog):
    x = clustered(n=600)
    with caplog.at_level(logging.INFO, logger="unreidusl.cluster.ann"):
        knn_search(x, k=10, backend="faiss_ivf", ann=AnnParams(nlist=20, nprobe=20, recall_queries=100))
    line = [r.getMessage() for r in caplog.records if "recall@10" in r.getMessage()]
    assert line == ["approximate kNN (faiss_ivf nlist=20 nprobe=20 refine=1.5): recall@10 = 1.000 on "
                    "100 sampled queries"]


def test_auto_switches_above_the_threshold_and_says_so(caplog):
    x = clustered(n=600)
    exact = knn_search(x, k=10, backend="numpy")
    with caplog.at_level(logging.INFO, logger="unreidusl.cluster"):
        below = knn_search(x, k=10, backend="auto", ann=AnnParams(auto_above=600))
    assert not [r for r in caplog.records if "approximate" in r.getMessage()]
    np.testing.assert_array_equal(below[1], exact[1])
    with caplog.at_level(logging.INFO, logger="unreidusl.cluster"):
        d, i = knn_search(x, k=10, backend="auto", ann=AnnParams(auto_above=599, nlist=10, nprobe=10))
    messages = [r.getMessage() for r in caplog.records]
    assert any("kNN backend auto: 600 database rows > 599" in m and "faiss_ivf nlist=10 nprobe=10" in m
               for m in messages)
    assert any("recall@10 = 1.000" in m for m in messages)
    check_contract(d, i, x, x, 10, self_search=True)


def test_row_maxima_with_an_approximate_backend():
    x = clustered(n=300)
    _, _, row_max = knn_search(x, k=5, backend="faiss_hnsw", return_max=True, ann=EXHAUSTIVE)
    np.testing.assert_allclose(row_max, exact_d2(x, x).max(1), rtol=1e-5)


def test_memmap_features_give_the_in_memory_result_without_a_copy(tmp_path):
    x = clustered(n=900)
    mm = open_feature_file(tmp_path / "f.f32", *x.shape, mode="w+")
    mm[:] = x
    mm.flush()
    ro = open_feature_file(tmp_path / "f.f32", *x.shape)
    assert np.shares_memory(_to_numpy32(ro), ro)                    # the exact paths read tiles of it
    assert np.shares_memory(_TorchOps("cpu").prep(mm).numpy(), mm)
    params = AnnParams(nlist=12, nprobe=4, pca_dim=8, chunk=128)    # many chunks
    for a, b in zip(ann_search(ro, k=10, params=params)[:2], ann_search(x, k=10, params=params)[:2]):
        np.testing.assert_array_equal(a, b)
    for backend, feats in (("numpy", ro), ("torch", mm)):     # torch warns on read-only arrays
        for a, b in zip(knn_search(feats, k=10, backend=backend, block_size=256),
                        knn_search(x, k=10, backend=backend, block_size=256)):
            np.testing.assert_array_equal(a, b)


def test_feature_file_checks_its_size(tmp_path):
    path = tmp_path / "sub" / "f.f32"
    mm = open_feature_file(path, 10, 4, "w+")
    assert mm.shape == (10, 4) and path.stat().st_size == 160 and not mm.any()
    assert open_feature_file(path, 5, 8).shape == (5, 8)            # same size, other shape: allowed
    with pytest.raises(ValueError, match=r"holds 160 bytes, but 10 x 5 float32 features need 200"):
        open_feature_file(path, 10, 5)
    with pytest.raises(FileNotFoundError):
        open_feature_file(tmp_path / "missing.f32", 10, 4)
    old = open_feature_file(path, 10, 4, "r+")
    old[:] = 1.0
    assert not open_feature_file(path, 10, 4, "w+").any() and old.all()   # replaced, old data kept


class _Loader:
    """Image batches of ``features`` rows (the identity model below returns them)."""

    sampler = None

    def __init__(self, features, batch):
        self.dataset, self.batch = list(range(len(features))), batch
        self.features = torch.from_numpy(features)

    def __iter__(self):
        for s in range(0, len(self.dataset), self.batch):
            index = torch.arange(s, min(len(self.dataset), s + self.batch))
            yield {"index": index, "images": self.features[index]}

    def __len__(self):
        return -(-len(self.dataset) // self.batch)


class _Identity(torch.nn.Module):
    def forward(self, batch):
        return batch["images"]


def test_extraction_to_a_feature_file(tmp_path):
    from unreidusl.evaluation.extract import extract_features

    x = clustered(n=70, dim=6)
    loader = _Loader(x, batch=16)
    in_memory = extract_features(_Identity(), loader, show_progress=False)
    on_disk = extract_features(_Identity(), loader, show_progress=False, out_path=tmp_path / "f.f32")
    assert torch.equal(on_disk, in_memory) and (tmp_path / "f.f32").stat().st_size == 70 * 6 * 4
    np.testing.assert_array_equal(open_feature_file(tmp_path / "f.f32", 70, 6), x)


def test_config_keys_are_validated_and_reach_the_jaccard_distance(tmp_path):
    with pytest.raises(ConfigError) as e:
        setup_cfg("", ["CLUSTER.ANN.NPROBE", "0"])
    assert str(e.value) == "CLUSTER.ANN.NPROBE = 0 is out of range: it must be > 0"
    with pytest.raises(ConfigError, match="CLUSTER.ANN.REFINE = 0.5 .* >= 1"):
        setup_cfg("", ["CLUSTER.ANN.REFINE", "0.5"])
    with pytest.raises(ConfigError, match="CLUSTER.KNN_BACKEND = 'ivf' .* faiss_ivf, faiss_hnsw"):
        setup_cfg("", ["CLUSTER.KNN_BACKEND", "ivf"])
    from unreidusl.cluster.distances import JaccardDistance

    x = clustered(n=500)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    cfg = get_cfg()
    cfg.CLUSTER.K1, cfg.CLUSTER.K2, cfg.MODEL.DEVICE = 12, 4, "cpu"
    exact = JaccardDistance(cfg)(x)
    cfg.CLUSTER.KNN_BACKEND = "faiss_ivf"
    cfg.CLUSTER.ANN.NLIST, cfg.CLUSTER.ANN.NPROBE = 8, 8
    mm = open_feature_file(tmp_path / "f.f32", *x.shape, mode="w+")
    mm[:] = x
    approx = JaccardDistance(cfg)(mm)
    assert abs(approx - exact).max() < 1e-6
    cfg.CLUSTER.ANN.NPROBE = 1
    cfg.CLUSTER.ANN.REFINE = 1.0
    assert abs(JaccardDistance(cfg)(x) - exact).max() > 0.01      # the keys are used


def test_reranking_accepts_the_approximate_backends():
    from unreidusl.evaluation.rerank import re_ranking

    x = clustered(n=400, dim=16, clusters=20)
    exact = re_ranking(x[:60], x[60:], k1=10, k2=4, knn_backend="numpy")
    approx = re_ranking(x[:60], x[60:], k1=10, k2=4, knn_backend="faiss_hnsw", ann=EXHAUSTIVE)
    np.testing.assert_allclose(approx, exact, atol=1e-5)
