"""Test-time TOC / SCP / STS terms on hand-computed cases, their chunked composition, and the
ReidEvaluator wiring of the TEST options (aux terms, camera-free mode, re-ranking)."""
import math

import numpy as np
import pytest
import scipy.sparse as sp

from unreidusl.config import get_cfg
from unreidusl.data import Sample
from unreidusl.auxinfo import AuxTerms, CameraMatch
from unreidusl.evaluation.chunked_distance import ChunkedDistance
from unreidusl.evaluation.evaluator import ReidEvaluator, parse_camera_free
from unreidusl.evaluation.rank import evaluate_features, evaluate_rank

D = np.array([[1.0, 2.0, 3.0],
              [4.0, 5.0, 6.0]])
O = np.array([[0, 1, 0],
              [0, 0, 1]], bool)
S = np.array([[1, 0, 0],
              [0, 1, 1]])
P = np.array([[1.0, 0.0, 0.5],
              [0.0, 0.25, 1.0]])


def test_toc_blocks_pairs():
    out = AuxTerms(2, 3, overlap=O).apply(D.copy(), 0)
    np.testing.assert_array_equal(out, [[1, np.inf, 3], [4, 5, np.inf]])
    out = AuxTerms(2, 3, overlap=sp.csr_matrix(O), overlap_penalty=1000).apply(D.copy(), 0)
    np.testing.assert_array_equal(out, [[1, 1002, 3], [4, 5, 1006]])


def test_scp_and_sts_by_hand():
    out = AuxTerms(2, 3, same_camera=S, cce_lambda=0.5).apply(D.copy(), 0)
    np.testing.assert_array_equal(out, [[1.5, 2, 3], [4, 5.5, 6.5]])
    out = AuxTerms(2, 3, plausibility=P, str_lambda=0.6, str_gamma=8.0).apply(D.copy(), 0)
    f = 1 + 0.6 * np.exp(-8.0 * P)
    np.testing.assert_allclose(out, D * f)
    assert out[0, 1] == pytest.approx(2 * 1.6)                    # P = 0: factor 1 + lambda
    assert out[0, 0] == pytest.approx(1 * (1 + 0.6 * math.exp(-8)))
    # all three, in order TOC, SCP, STS: (D + lc S) * (1 + ls exp(-g P)), blocked pairs stay inf
    aux = AuxTerms(2, 3, overlap=O, same_camera=S, plausibility=P, cce_lambda=0.5)
    out = aux.apply(D.copy(), 0)
    exp = (D + 0.5 * S) * f
    exp[O] = np.inf
    np.testing.assert_allclose(out, exp)
    assert aux.active == ["TOC", "SCP", "STS"]
    # row offsets: the second row alone
    np.testing.assert_allclose(aux.apply(D[1:].copy(), 1), exp[1:])


def test_defaults_follow_auxuslreid():
    aux = AuxTerms(2, 3, same_camera=S, plausibility=P)
    assert (aux.cce_lambda, aux.str_lambda, aux.str_gamma) == (0.006, 0.6, 8.0)
    cfg = get_cfg()
    assert (cfg.TEST.SCP.LAMBDA, cfg.TEST.STS.LAMBDA, cfg.TEST.STS.GAMMA) == (0.006, 0.6, 8.0)
    assert not (cfg.TEST.TOC.ENABLED or cfg.TEST.SCP.ENABLED or cfg.TEST.STS.ENABLED)


def test_inputs_sparse_torch_and_camera_match():
    torch = pytest.importorskip("torch")
    cams_q, cams_g = np.array([1, 2]), np.array([1, 2, 2])
    cm = CameraMatch(cams_q, cams_g)
    np.testing.assert_array_equal(cm.rows(0, 2), S.astype(bool))
    a = AuxTerms(2, 3, same_camera=cm, plausibility=torch.from_numpy(P), cce_lambda=0.5)
    b = AuxTerms(2, 3, same_camera=sp.coo_matrix(S), plausibility=P, cce_lambda=0.5)
    np.testing.assert_allclose(a.apply(D.copy(), 0), b.apply(D.copy(), 0))


def test_shape_errors_name_expected_and_found():
    with pytest.raises(ValueError, match=r"overlap \(TOC\).*\(2, 3\), found \(3, 2\)"):
        AuxTerms(2, 3, overlap=O.T)
    with pytest.raises(ValueError, match=r"plausibility.*\(2, 3\), found \(6,\)"):
        AuxTerms(2, 3, plausibility=P.ravel())
    with pytest.raises(ValueError, match="do not fit"):
        AuxTerms(2, 3, same_camera=S).apply(np.zeros((2, 4)), 0)
    qf, gf = np.zeros((2, 4), np.float32), np.zeros((5, 4), np.float32)
    with pytest.raises(ValueError, match=r"\(2, 5\)"):
        ChunkedDistance(qf, gf, aux=AuxTerms(2, 3, same_camera=S))


def problem(seed=0, nq=23, ng=61, d=8):
    rng = np.random.default_rng(seed)
    qf = rng.normal(size=(nq, d)).astype(np.float32)
    gf = rng.normal(size=(ng, d)).astype(np.float32)
    ids = (rng.integers(0, 6, nq), rng.integers(0, 6, ng), rng.integers(0, 3, nq),
           rng.integers(0, 3, ng))
    overlap = rng.random((nq, ng)) < 0.2
    plaus = rng.random((nq, ng))
    return qf, gf, ids, overlap, plaus


@pytest.mark.parametrize("metric", ["euclidean", "cosine"])
def test_chunked_dist_fn_equals_dense(metric):
    qf, gf, (qp, gp, qc, gc), overlap, plaus = problem()
    aux = AuxTerms(23, 61, overlap=sp.csr_matrix(overlap), same_camera=CameraMatch(qc, gc),
                   plausibility=plaus, cce_lambda=0.1)
    a, b = qf.astype(np.float64), gf.astype(np.float64)
    if metric == "cosine":
        a, b = (x / np.linalg.norm(x, axis=1, keepdims=True) for x in (a, b))
        dense = 1 - a @ b.T
    else:
        dense = ((a[:, None] - b[None]) ** 2).sum(-1)
    dense = (dense + 0.1 * (qc[:, None] == gc[None])) * (1 + 0.6 * np.exp(-8 * plaus))
    dense[overlap] = np.inf
    cd = ChunkedDistance(qf, gf, metric, aux=aux)
    np.testing.assert_allclose(cd[0:23], dense, rtol=1e-5, atol=1e-5)
    ref = evaluate_rank(dense, qp, gp, qc, gc, 10)
    got = evaluate_features(qf, gf, qp, gp, qc, gc, 10, chunk_size=4, dist_fn=cd)
    assert got["mAP"] == pytest.approx(ref["mAP"])
    np.testing.assert_allclose(got["cmc"], ref["cmc"])
    assert evaluate_rank(cd, qp, gp, qc, gc, 10)["mAP"] == pytest.approx(ref["mAP"])


def test_dist_fn_with_torch_features_and_wrong_rows():
    torch = pytest.importorskip("torch")
    qf, gf, (qp, gp, qc, gc), overlap, _ = problem(1)
    aux = AuxTerms(23, 61, overlap=overlap)
    tq, tg = torch.from_numpy(qf), torch.from_numpy(gf)
    ref = evaluate_features(qf, gf, qp, gp, qc, gc, 10, dist_fn=ChunkedDistance(qf, gf, aux=aux))
    got = evaluate_features(tq, tg, qp, gp, qc, gc, 10, chunk_size=5,
                            dist_fn=ChunkedDistance(tq, tg, aux=aux))
    assert got["mAP"] == pytest.approx(ref["mAP"], abs=1e-7)
    with pytest.raises(ValueError, match="row slices"):
        ChunkedDistance(qf, gf, aux=aux)(qf[3:6].copy(), gf)


def test_toc_pushes_blocked_positive_last():
    # one query, positive at gallery 0 (nearest) but blocked: it ranks 4th -> AP = 1/4
    dist = np.array([[0.1, 0.5, 0.6, 0.7]])
    for penalty in (math.inf, 1000.0):
        d = AuxTerms(1, 4, overlap=np.array([[1, 0, 0, 0]]), overlap_penalty=penalty).apply(
            dist.copy(), 0)
        for use_cython in (False, True):
            res = evaluate_rank(d, [7], [7, 1, 2, 3], [0], [1, 1, 1, 1], 4, use_cython=use_cython)
            assert res["mAP"] == pytest.approx(0.25)
            np.testing.assert_array_equal(res["cmc"], [0, 0, 0, 1])


# ----------------------------------------------------------------------------- evaluator wiring
def samples(pids, cams):
    return [Sample(frames=(f"/nonexistent/{i}.jpg",), pid=int(p), camid=int(c))
            for i, (p, c) in enumerate(zip(pids, cams))]


def make_cfg(**opts):
    cfg = get_cfg()
    cfg.merge_from_list([x for kv in opts.items() for x in (kv[0].replace("__", "."), str(kv[1]))])
    cfg.DATALOADER.NUM_WORKERS = 0
    return cfg


def test_parse_camera_free():
    assert parse_camera_free("auto") is None
    assert parse_camera_free("True") is True and parse_camera_free("false") is False
    assert parse_camera_free(True) is True
    with pytest.raises(ValueError, match="CAMERA_FREE"):
        parse_camera_free("sometimes")


def test_evaluator_applies_options():
    qf, gf, (qp, gp, qc, gc), overlap, plaus = problem(2)
    query, gallery = samples(qp, qc), samples(gp, gc)
    base = ReidEvaluator(make_cfg(), query, gallery).evaluate_features(qf, gf)
    assert base["distance"] == "euclidean" and base["camera_free"] is False
    cfg = make_cfg(TEST__TOC__ENABLED=True, TEST__SCP__ENABLED=True, TEST__STS__ENABLED=True,
                   TEST__SCP__LAMBDA=0.2)
    with pytest.raises(ValueError, match="TOC.ENABLED.*overlap.*STS.ENABLED"):
        ReidEvaluator(cfg, query, gallery)
    ev = ReidEvaluator(cfg, query, gallery, overlap=overlap, plausibility=plaus)
    got = ev.evaluate_features(qf, gf)
    aux = AuxTerms(23, 61, overlap=overlap, same_camera=CameraMatch(qc, gc), plausibility=plaus,
                   cce_lambda=0.2)
    ref = evaluate_features(qf, gf, qp, gp, qc, gc, 50, dist_fn=ChunkedDistance(qf, gf, aux=aux))
    assert got["mAP"] == pytest.approx(100 * ref["mAP"])
    assert got["distance"] == "euclidean+TOC+SCP+STS"
    # camera-free forced: same-camera same-pid items become positives
    free = ReidEvaluator(make_cfg(TEST__CAMERA_FREE="true"), query, gallery).evaluate_features(
        qf, gf)
    ref = evaluate_features(qf, gf, qp, gp, qc, gc, 50, camera_free=True)
    assert free["mAP"] == pytest.approx(100 * ref["mAP"]) and free["camera_free"] is True
    # re-ranking: the re-ranked metrics are returned, the plain ones kept as plain_*
    rr = ReidEvaluator(make_cfg(TEST__RERANK__ENABLED=True, TEST__RERANK__K1=8, TEST__RERANK__K2=3),
                       query, gallery).evaluate_features(qf, gf)
    assert rr["distance"] == "euclidean+rerank"
    assert rr["plain_mAP"] == pytest.approx(base["mAP"]) and rr["evaluator"] in ("cython", "numpy")
