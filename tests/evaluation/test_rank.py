"""Tests of unreidusl.evaluation.rank (NumPy and compiled kernels)."""
import logging

import numpy as np
import pytest

from unreidusl.evaluation import rank as rank_mod
from unreidusl.evaluation import rank_numpy
from unreidusl.evaluation.rank import compiled_available, evaluate_features, evaluate_rank

needs_compiled = pytest.mark.skipif(
    not compiled_available(), reason="rank_cy extension not built (run `pip install -e .`)")
IMPLS = [False, pytest.param(True, marks=needs_compiled)]


def reference(dist, qp, gp, qc, gc, max_rank, camera_free=False):
    """Brute force: full stable argsort of each query's valid gallery, plain Python loops."""
    aps, inps, firsts = [], [], []
    for q in range(dist.shape[0]):
        keep = [g for g in range(dist.shape[1])
                if camera_free or not (gp[g] == qp[q] and gc[g] == qc[q])]
        order = sorted(keep, key=lambda g: (dist[q, g], g))  # stable: ties by gallery index
        matches = [gp[g] == qp[q] for g in order]
        if not any(matches):
            continue
        hits, precisions, last = 0, [], 0
        for i, m in enumerate(matches, start=1):
            if m:
                hits += 1
                precisions.append(hits / i)
                last = i
        aps.append(sum(precisions) / hits)
        inps.append(hits / last)
        firsts.append(matches.index(True) + 1)
    if not aps:
        return None
    cmc = np.array([np.mean([f <= k + 1 for f in firsts]) for k in range(max_rank)])
    return {"mAP": np.mean(aps), "mINP": np.mean(inps), "cmc": cmc,
            "num_valid_queries": len(aps), "num_skipped_queries": dist.shape[0] - len(aps)}


def assert_close(res, ref, tol=1e-9):
    assert res["num_valid_queries"] == ref["num_valid_queries"]
    assert res["num_skipped_queries"] == ref["num_skipped_queries"]
    assert res["mAP"] == pytest.approx(ref["mAP"], abs=tol)
    assert res["mINP"] == pytest.approx(ref["mINP"], abs=tol)
    np.testing.assert_allclose(res["cmc"], ref["cmc"], atol=tol)


# Hand-computed example. Gallery: g0..g5 with pids [1,2,1,3,2,1] and cameras [0,1,1,0,0,1].
# q0 (pid 1, cam 0): junk g0. Valid order g1 .1, g3 .2, g2 .3*, g4 .6, g5 .9*  -> ranks 3, 5
#     AP = (1/3 + 2/5) / 2 = 0.366667, INP = 2/5, first = 3
# q1 (pid 2, cam 0): junk g4 (d=.1 would be rank 1). Valid order g1 .2*, g5 .3, ... -> rank 1
#     AP = 1, INP = 1, first = 1
# q2 (pid 4): no match -> skipped
# q3 (pid 3, cam 1): no junk. Order g2 .2, then ties at .5 by index g0, g1, g3*, g5 -> rank 4
#     AP = 1/4, INP = 1/4, first = 4
# mAP = (0.366667 + 1 + 0.25) / 3 = 0.538889; mINP = (0.4 + 1 + 0.25) / 3 = 0.55
# CMC (max_rank 5), first ranks 3, 1, 4 -> [1/3, 1/3, 2/3, 1, 1]
HAND = dict(
    distmat=np.array([[0.5, 0.1, 0.3, 0.2, 0.6, 0.9],
                      [0.4, 0.2, 0.8, 0.7, 0.1, 0.3],
                      [0.1, 0.2, 0.3, 0.4, 0.5, 0.6],
                      [0.5, 0.5, 0.2, 0.5, 0.9, 0.5]], dtype=np.float32),
    q_pids=np.array([1, 2, 4, 3]), g_pids=np.array([1, 2, 1, 3, 2, 1]),
    q_camids=np.array([0, 0, 0, 1]), g_camids=np.array([0, 1, 1, 0, 0, 1]))


@pytest.mark.parametrize("use_cython", IMPLS)
def test_hand_example(use_cython):
    res = evaluate_rank(**HAND, max_rank=5, use_cython=use_cython)
    assert res["impl"] == ("cython" if use_cython else "numpy")
    assert res["mAP"] == pytest.approx((1 / 3 + 2 / 5) / 2 / 3 + 1 / 3 + 0.25 / 3)
    assert res["mAP"] == pytest.approx(0.5388888889)
    assert res["mINP"] == pytest.approx(0.55)
    np.testing.assert_allclose(res["cmc"], [1 / 3, 1 / 3, 2 / 3, 1, 1])
    assert res["num_valid_queries"] == 3 and res["num_skipped_queries"] == 1
    assert res["cmc"].shape == (5,)


def random_problem(rng, i):
    nq, ng = int(rng.integers(1, 25)), int(rng.integers(1, 70))
    n_ids, n_cams = int(rng.integers(1, 8)), int(rng.integers(1, 4))
    qp, gp = rng.integers(0, n_ids, nq), rng.integers(0, n_ids + 2, ng)
    qc, gc = rng.integers(0, n_cams, nq), rng.integers(0, n_cams, ng)
    dist = rng.random((nq, ng))
    if i % 3 == 0:
        dist = np.round(dist * 4) / 4  # heavy ties
    elif i % 3 == 1:
        dist = np.round(dist * 50) / 50  # some ties
    dtype = np.float64 if i % 4 == 0 else np.float32
    return dist.astype(dtype), qp, gp, qc, gc


@pytest.mark.parametrize("use_cython,passes_min", [
    (False, 4096), (False, 0), pytest.param(True, 0, marks=needs_compiled)])
def test_against_brute_force(use_cython, passes_min, monkeypatch):
    # passes_min 0: the NumPy kernel counts with passes instead of sorting the candidates
    monkeypatch.setattr(rank_numpy, "_PASSES_MIN_CAND", passes_min)
    rng = np.random.default_rng(0)
    checked = 0
    for i in range(60):
        dist, qp, gp, qc, gc = random_problem(rng, i)
        max_rank = int(rng.integers(1, 80))  # often larger than the gallery
        camera_free = bool(i % 5 == 0)
        ref = reference(dist, qp, gp, qc, gc, max_rank, camera_free)
        if ref is None:
            with pytest.raises(ValueError, match="No query has a true match"):
                evaluate_rank(dist, qp, gp, qc, gc, max_rank, use_cython, camera_free)
            continue
        res = evaluate_rank(dist, qp, gp, qc, gc, max_rank, use_cython, camera_free)
        assert_close(res, ref)
        assert np.all(np.diff(res["cmc"]) >= 0) and res["cmc"][-1] <= 1
        checked += 1
    assert checked >= 20


def test_matches_sklearn_without_ties():
    metrics = pytest.importorskip("sklearn.metrics")
    rng = np.random.default_rng(1)
    dist = rng.random((15, 40))  # continuous: no ties
    qp, gp = rng.integers(0, 5, 15), rng.integers(0, 5, 40)
    qc, gc = rng.integers(0, 3, 15), rng.integers(0, 3, 40)
    aps = []
    for q in range(15):
        keep = ~((gp == qp[q]) & (gc == qc[q]))
        y = gp[keep] == qp[q]
        if y.any():
            aps.append(metrics.average_precision_score(y, -dist[q, keep]))
    res = evaluate_rank(dist, qp, gp, qc, gc, use_cython=False)
    assert res["mAP"] == pytest.approx(np.mean(aps), abs=1e-12)


@pytest.mark.parametrize("use_cython", IMPLS)
def test_single_camera_auto_camera_free(use_cython, caplog):
    rng = np.random.default_rng(2)
    dist = rng.random((10, 30)).astype(np.float32)
    qp, gp = rng.integers(0, 4, 10), rng.integers(0, 4, 30)
    cams_q, cams_g = np.zeros(10, int), np.zeros(30, int)
    with caplog.at_level(logging.WARNING, logger="unreidusl.evaluation"):
        res = evaluate_rank(dist, qp, gp, cams_q, cams_g, 10, use_cython)
    assert "camera-free" in caplog.text
    assert_close(res, reference(dist, qp, gp, cams_q, cams_g, 10, camera_free=True))
    with pytest.raises(ValueError, match="camera_free=True"):
        evaluate_rank(dist, qp, gp, cams_q, cams_g, 10, use_cython, camera_free=False)


@pytest.mark.parametrize("use_cython", IMPLS)
def test_small_gallery_cmc_saturates(use_cython):
    # 3 gallery items, max_rank 50: q0's match is at rank 3, q1's at rank 2; the curve must
    # reach 1 at rank 3 and stay there (no stale per-query values beyond the gallery size)
    dist = np.array([[0.3, 0.1, 0.2], [0.1, 0.2, 0.3]], np.float32)
    res = evaluate_rank(dist, [0, 1], [0, 1, 2], [0, 0], [1, 1, 1], 50, use_cython)
    np.testing.assert_allclose(res["cmc"][:3], [0.0, 0.5, 1.0])
    np.testing.assert_allclose(res["cmc"][3:], 1.0)
    assert res["mAP"] == pytest.approx((1 / 3 + 1 / 2) / 2)


@needs_compiled
@pytest.mark.parametrize("separation", [3.0, 0.0])  # sparse rows (search) / dense (counting passes)
def test_compiled_matches_numpy_larger(separation):
    rng = np.random.default_rng(3)
    for dtype, quant in ((np.float32, None), (np.float64, None), (np.float32, 20)):
        feats = rng.normal(size=(300, 16))
        pids = rng.integers(0, 60, 300)
        feats += separation * rng.normal(size=(60, 16))[pids]
        dist = ((feats[:80, None] - feats[None, 80:]) ** 2).sum(-1)
        if quant:
            dist = np.round(dist / dist.max() * quant)
        dist = dist.astype(dtype)
        qc, gc = rng.integers(0, 6, 80), rng.integers(0, 6, 220)
        ref = reference(dist, pids[:80], pids[80:], qc, gc, 50)
        a = evaluate_rank(dist, pids[:80], pids[80:], qc, gc, 50, use_cython=True)
        b = evaluate_rank(dist, pids[:80], pids[80:], qc, gc, 50, use_cython=False)
        assert (a["impl"], b["impl"]) == ("cython", "numpy")
        for key in ("mAP", "mINP"):
            assert a[key] == pytest.approx(b[key], abs=1e-6)
        np.testing.assert_allclose(a["cmc"], b["cmc"], atol=1e-6)
        assert_close(a, ref)


def test_shape_mismatch_messages():
    dist = np.zeros((3, 4), np.float32)
    ok_q, ok_g = np.zeros(3, int), np.zeros(4, int)
    with pytest.raises(ValueError, match=r"g_pids has shape \(5,\) but distmat has shape \(3, 4\)"):
        evaluate_rank(dist, ok_q, np.zeros(5, int), ok_q, ok_g)
    with pytest.raises(ValueError, match=r"q_camids has shape \(2,\)"):
        evaluate_rank(dist, ok_q, ok_g, np.zeros(2, int), ok_g)
    with pytest.raises(ValueError, match="distmat must be 2-D"):
        evaluate_rank(np.zeros(4), ok_q, ok_g, ok_q, ok_g)
    with pytest.raises(ValueError, match="NaN"):
        evaluate_rank(np.full((3, 4), np.nan), ok_q, ok_g, ok_q, ok_g, use_cython=False)
    with pytest.raises(ValueError, match="integers"):
        evaluate_rank(dist, ok_q + 0.5, ok_g, ok_q, ok_g)


def _fresh_kernel(api=1):
    from unreidusl.utils.compiled import CompiledKernel
    return CompiledKernel("unreidusl.evaluation.rank_cy", "rank_chunk_cy", "RANK_CY_API", api,
                          "the NumPy evaluator", rank_mod.logger, logging.WARNING)


def test_fallback_warns_once(monkeypatch, caplog):
    monkeypatch.setattr(rank_mod, "_KERNEL", _fresh_kernel())
    import builtins
    real_import = builtins.__import__

    def fake_import(name, globals=None, locals=None, fromlist=(), level=0):
        if name.endswith("rank_cy") or (fromlist and "rank_cy" in fromlist):
            raise ImportError("simulated missing extension")
        return real_import(name, globals, locals, fromlist, level)

    import importlib
    monkeypatch.setattr(builtins, "__import__", fake_import)
    monkeypatch.setattr(importlib, "import_module", lambda name, package=None: fake_import(name))
    with caplog.at_level(logging.WARNING, logger="unreidusl.evaluation"):
        for _ in range(3):
            res = evaluate_rank(**HAND, use_cython=True)
    assert res["impl"] == "numpy"
    msgs = [r.getMessage() for r in caplog.records if "unavailable" in r.getMessage()]
    assert len(msgs) == 1 and "pip install -e ." in msgs[0] and "simulated" in msgs[0]


@needs_compiled
def test_stale_build_detected(monkeypatch, caplog):
    monkeypatch.setattr(rank_mod, "_KERNEL", _fresh_kernel(api=-1))  # the .so predates the .pyx
    with caplog.at_level(logging.WARNING, logger="unreidusl.evaluation"):
        res = evaluate_rank(**HAND, use_cython=True)
    assert res["impl"] == "numpy" and "stale unreidusl.evaluation.rank_cy build" in caplog.text


@pytest.mark.parametrize("metric", ["euclidean", "cosine"])
@pytest.mark.parametrize("use_cython", IMPLS)
def test_evaluate_features_matches_distmat(metric, use_cython):
    rng = np.random.default_rng(4)
    qf = rng.normal(size=(37, 8)).astype(np.float32)
    gf = rng.normal(size=(90, 8)).astype(np.float32)
    qp, gp = rng.integers(0, 10, 37), rng.integers(0, 10, 90)
    qc, gc = rng.integers(0, 3, 37), rng.integers(0, 3, 90)
    if metric == "cosine":
        qn = qf / np.linalg.norm(qf, axis=1, keepdims=True)
        gn = gf / np.linalg.norm(gf, axis=1, keepdims=True)
        dist = 1 - qn @ gn.T
    else:
        dist = ((qf[:, None].astype(np.float64) - gf[None]) ** 2).sum(-1)
    ref = reference(dist, qp, gp, qc, gc, 20)
    res = evaluate_features(qf, gf, qp, gp, qc, gc, max_rank=20, chunk_size=8, metric=metric,
                            use_cython=use_cython)
    assert_close(res, ref, tol=1e-6)
    custom = evaluate_features(qf, gf, qp, gp, qc, gc, max_rank=20, chunk_size=5,
                               dist_fn=lambda a, b: -(a @ b.T), use_cython=use_cython)
    assert_close(custom, reference(-(qf @ gf.T), qp, gp, qc, gc, 20), tol=1e-6)


def test_evaluate_features_torch_and_bad_input():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(5)
    qf = rng.normal(size=(20, 6)).astype(np.float32)
    gf = rng.normal(size=(50, 6)).astype(np.float32)
    qp, gp = rng.integers(0, 5, 20), rng.integers(0, 5, 50)
    qc, gc = rng.integers(0, 2, 20), rng.integers(0, 2, 50)
    a = evaluate_features(torch.from_numpy(qf), torch.from_numpy(gf), torch.from_numpy(qp),
                          torch.from_numpy(gp), qc, gc, max_rank=10, chunk_size=7)
    b = evaluate_features(qf, gf, qp, gp, qc, gc, max_rank=10, chunk_size=20)
    assert a["mAP"] == pytest.approx(b["mAP"], abs=1e-6)
    np.testing.assert_allclose(a["cmc"], b["cmc"])
    with pytest.raises(ValueError, match=r"qf \(20, 6\) and gf \(50, 5\)"):
        evaluate_features(qf, gf[:, :5], qp, gp, qc, gc)
    with pytest.raises(ValueError, match="metric"):
        evaluate_features(qf, gf, qp, gp, qc, gc, metric="l1")
