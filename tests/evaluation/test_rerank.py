"""k-reciprocal re-ranking against a dense textbook implementation, and the kNN / Jaccard options
it relies on (``knn_search(return_max=True)``, ``jaccard_distance(rows=..., encode_norm=...)``)."""
import numpy as np
import pytest

from unreidusl.cluster.jaccard import jaccard_distance
from unreidusl.cluster.knn import faiss_available, knn_search
from unreidusl.evaluation.chunked_distance import ChunkedDistance
from unreidusl.evaluation.rank import evaluate_features, evaluate_rank
from unreidusl.evaluation.rerank import ReRankedDistance, re_ranking


def grid_features(n, d=16, per_cluster=8, seed=0, n_dup=0):
    """Clustered features on a 1/64 grid: float32 squared distances are exact, so the float32 kNN
    and the float64 textbook rank identically (ties -> smaller index in both)."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((max(1, n // per_cluster), d))
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    x = centres[rng.integers(0, centres.shape[0], n)] + 0.25 * rng.standard_normal((n, d))
    x = np.round(x * 64) / 64
    if n_dup:
        x[rng.integers(0, n, n_dup)] = x[rng.integers(0, n, n_dup)]
    return x.astype(np.float32)


def euclid(a, b):
    a, b = a.astype(np.float64), b.astype(np.float64)
    return np.sqrt(np.maximum(((a[:, None, :] - b[None]) ** 2).sum(-1), 0.0))


def textbook_rerank(q_g, q_q, g_g, k1=20, k2=6, lam=0.3):
    """Zhong et al. 2017, dense and literal (inputs: Euclidean distances, squared inside)."""
    orig = np.block([[q_q, q_g], [q_g.T, g_g]]) ** 2
    orig = (orig / orig.max(axis=0)).T                      # column-max normalisation
    n, nq = orig.shape[0], q_g.shape[0]
    rank = np.argsort(orig, axis=1, kind="stable")

    def recip(i, k):
        fwd = rank[i, :k + 1]
        return np.array([j for j in fwd if i in rank[j, :k + 1]], dtype=np.int64)

    v = np.zeros((n, n))
    for i in range(n):
        r = recip(i, k1)
        expansion = r
        for c in r:
            rc = recip(c, int(np.around(k1 / 2.0)))
            if len(np.intersect1d(rc, r)) > 2.0 / 3.0 * len(rc):
                expansion = np.append(expansion, rc)
        expansion = np.unique(expansion)
        w = np.exp(-orig[i, expansion])
        v[i, expansion] = w / w.sum()
    if k2 != 1:
        v = np.stack([v[rank[i, :k2]].mean(0) for i in range(n)])
    jac = np.zeros((nq, n))
    for i in range(nq):
        m = np.minimum(v[i][None, :], v).sum(1)
        jac[i] = 1.0 - m / (2.0 - m)
    final = (1.0 - lam) * jac + lam * orig[:nq]
    return final[:, nq:]


def textbook_from_features(qf, gf, **kw):
    return textbook_rerank(euclid(qf, gf), euclid(qf, qf), euclid(gf, gf), **kw)


@pytest.mark.parametrize("nq,ng,k1,k2,lam,n_dup", [
    (30, 110, 20, 6, 0.3, 0),      # paper defaults
    (25, 95, 12, 4, 0.5, 6),       # duplicates: exact ties in the kNN
    (20, 60, 8, 1, 0.0, 0),        # no query expansion, Jaccard only
    (3, 5, 20, 6, 1.0, 0),         # k1 + 1 > N; original distance only
])
def test_matches_textbook(nq, ng, k1, k2, lam, n_dup):
    x = grid_features(nq + ng, n_dup=n_dup, seed=nq)
    qf, gf = x[:nq], x[nq:]
    ref = textbook_from_features(qf, gf, k1=k1, k2=k2, lam=lam)
    rr = ReRankedDistance(qf, gf, k1=k1, k2=k2, lambda_value=lam)
    got = rr.rows(0, nq)
    assert got.shape == (nq, ng) and got.dtype == np.float32
    np.testing.assert_allclose(got, ref, atol=1e-6, rtol=0)
    np.testing.assert_allclose(rr[5:12], ref[5:12], atol=1e-6, rtol=0)   # row blocks
    np.testing.assert_allclose(re_ranking(qf, gf, k1, k2, lam, knn_backend="numpy"), ref,
                               atol=1e-6, rtol=0)


def test_query_copies_in_gallery_keep_zero_jaccard():
    x = grid_features(60, seed=5)
    qf, gf = x[:10], np.concatenate([x[10:], x[:4]])       # exact copies: J = 0, stored explicitly
    ref = textbook_from_features(qf, gf, k1=8, k2=3)
    got = ReRankedDistance(qf, gf, k1=8, k2=3).rows(0, 10)
    np.testing.assert_allclose(got, ref, atol=1e-6, rtol=0)
    assert np.all(np.abs(got[np.arange(4), 50 + np.arange(4)]) < 1e-6)


def test_chunked_evaluation_equals_dense_textbook():
    rng = np.random.default_rng(1)
    nq, ng = 40, 160
    x = grid_features(nq + ng, seed=3)
    qf, gf = x[:nq], x[nq:]
    q_pids, g_pids = rng.integers(0, 15, nq), rng.integers(0, 15, ng)
    q_cams, g_cams = rng.integers(0, 3, nq), rng.integers(0, 3, ng)
    ref = evaluate_rank(textbook_from_features(qf, gf), q_pids, g_pids, q_cams, g_cams, 10)
    cd = ChunkedDistance(qf, gf, base=ReRankedDistance(qf, gf))
    got = evaluate_features(qf, gf, q_pids, g_pids, q_cams, g_cams, 10, chunk_size=7, dist_fn=cd)
    assert got["mAP"] == pytest.approx(ref["mAP"], abs=1e-9)
    np.testing.assert_allclose(got["cmc"], ref["cmc"])
    lazy = evaluate_rank(cd, q_pids, g_pids, q_cams, g_cams, 10)        # lazy-matrix use
    assert lazy["mAP"] == pytest.approx(ref["mAP"], abs=1e-9)


def test_cosine_and_torch_inputs():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(2)
    qf = rng.standard_normal((20, 12)).astype(np.float32) * rng.uniform(0.5, 3, (20, 1))
    gf = rng.standard_normal((70, 12)).astype(np.float32) * rng.uniform(0.5, 3, (70, 1))
    unit = lambda a: (a / np.linalg.norm(a, axis=1, keepdims=True)).astype(np.float32)  # noqa: E731
    cos = ReRankedDistance(qf, gf, k1=10, k2=3, metric="cosine").rows(0, 20)
    euc = ReRankedDistance(unit(qf), unit(gf), k1=10, k2=3).rows(0, 20)
    np.testing.assert_allclose(cos, euc, atol=1e-6)
    np.testing.assert_allclose(cos, textbook_from_features(unit(qf), unit(gf), k1=10, k2=3),
                               atol=1e-5)
    tt = ReRankedDistance(torch.from_numpy(qf), torch.from_numpy(gf), k1=10, k2=3,
                          metric="cosine").rows(0, 20)
    np.testing.assert_allclose(tt, cos, atol=1e-6)


def test_bad_arguments():
    x = grid_features(20)
    with pytest.raises(ValueError, match="lambda_value"):
        ReRankedDistance(x[:5], x[5:], lambda_value=1.5)
    with pytest.raises(ValueError, match="same feature size"):
        ReRankedDistance(x[:5], x[5:, :8])
    with pytest.raises(ValueError, match="metric"):
        ReRankedDistance(x[:5], x[5:], metric="manhattan")


# ---------------------------------------------------------------- kNN / Jaccard extensions
@pytest.mark.parametrize("backend", ["torch", "numpy"] + (["faiss"] if faiss_available() else []))
def test_knn_return_max(backend):
    rng = np.random.default_rng(4)
    x = rng.standard_normal((300, 10)).astype(np.float32)
    y = rng.standard_normal((40, 10)).astype(np.float32)
    d_self = euclid(x, x) ** 2
    dist, idx, mx = knn_search(x, k=7, backend=backend, block_size=64, return_max=True)
    ref_d, ref_i = knn_search(x, k=7, backend=backend, block_size=64)
    np.testing.assert_array_equal(idx, ref_i)
    np.testing.assert_array_equal(dist, ref_d)
    assert mx.shape == (300,) and mx.dtype == np.float32
    np.testing.assert_allclose(mx, d_self.max(1), rtol=1e-5)
    _, _, mq = knn_search(y, x, k=5, backend=backend, return_max=True)
    np.testing.assert_allclose(mq, (euclid(y, x) ** 2).max(1), rtol=1e-5)


def test_jaccard_rows_and_encode_norm():
    x = grid_features(150, seed=7)
    full = jaccard_distance(x, k1=12, k2=4, knn_backend="numpy")
    part = jaccard_distance(x, k1=12, k2=4, knn_backend="numpy", rows=(40, 95))
    assert part.shape == (55, 150)
    np.testing.assert_array_equal(part.toarray(), full[40:95].toarray())
    # a constant norm c is the same as encoding d / c
    scaled = jaccard_distance(x * np.float32(0.5), k1=12, k2=4, knn_backend="numpy")
    normed = jaccard_distance(x, k1=12, k2=4, knn_backend="numpy", encode_norm=np.full(150, 4.0))
    np.testing.assert_allclose(normed.toarray(), scaled.toarray(), atol=1e-6)
    with pytest.raises(ValueError, match="rows"):
        jaccard_distance(x, k1=12, k2=4, rows=(10, 200))
    with pytest.raises(ValueError, match="encode_norm"):
        jaccard_distance(x, k1=12, k2=4, encode_norm=np.zeros(150))
