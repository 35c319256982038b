"""Auxiliary information: TOC mining against brute force, the STS transit estimator, SCP/STS on a
sparse distance (same formulas as the test side), .npz round trip and alignment errors, the
pickle opt-in, must-link, the size histogram, and the wiring into training."""
import os
import pickle

import numpy as np
import pytest
import scipy.sparse as sp
import torch
from PIL import Image

from unreidusl.auxinfo import (AuxMismatchError, TrackletMeta, load_aux, load_test_aux,
                                        load_train_aux, mine_test_aux, mine_train_aux,
                                        overlap_matrix, save_aux)
from unreidusl.auxinfo import apply_aux_terms
from unreidusl.cluster.pipeline import PseudoLabeler, apply_must_link, tracklet_groups
from unreidusl.cluster.plots import cluster_size_histogram, size_classes
from unreidusl.auxinfo.transit import TransitModel, TransitPlausibility
from unreidusl.config import get_cfg
from unreidusl.data import Sample
from unreidusl.auxinfo import AuxTerms

from helpers import tiny_opts


def make_samples(rng, n, cams=3, span=400, video=True, prefix="train"):
    out = []
    for i in range(n):
        start = float(rng.integers(0, span))
        length = int(rng.integers(1, 30)) if video else 1
        ts = tuple(start + np.arange(length, dtype=float))
        folder = f"/data/{prefix}/{i:04d}/{i % 7:04d}"
        frames = tuple(f"{folder}/f{j:03d}.jpg" for j in range(length))
        out.append(Sample(frames, int(i % 11), int(rng.integers(0, cams)), ts))
    return out


def brute_overlap(a, b, square):
    m = np.zeros((len(a), len(b)), bool)
    for i in range(len(a)):
        for j in range(len(b)):
            if square and i == j:
                continue
            m[i, j] = (a.camids[i] == b.camids[j] and np.isfinite(a.start[i]) and
                       np.isfinite(b.start[j]) and max(a.start[i], b.start[j]) <= min(a.end[i], b.end[j]))
    return m


def test_toc_matches_brute_force():
    rng = np.random.default_rng(0)
    a = TrackletMeta.from_samples(make_samples(rng, 90))
    b = TrackletMeta.from_samples(make_samples(rng, 50, prefix="gallery"))
    a.start[3] = a.end[3] = np.nan                       # no time: no constraint
    sq = overlap_matrix(a)
    assert sq.dtype == bool and sq.shape == (90, 90) and sq.nnz > 50
    np.testing.assert_array_equal(sq.toarray(), brute_overlap(a, a, True))
    np.testing.assert_array_equal(sq.toarray(), sq.toarray().T)
    np.testing.assert_array_equal(overlap_matrix(a, b).toarray(), brute_overlap(a, b, False))
    # touching spans (end == start) overlap: the same world frame
    m = TrackletMeta(np.array(["x", "y", "z"]), np.array([0, 0, 1]), np.array([0.0, 5.0, 0.0]),
                     np.array([5.0, 9.0, 9.0]))
    assert overlap_matrix(m).toarray().tolist() == [[False, True, False], [True, False, False],
                                                    [False, False, False]]


def test_transit_estimator():
    n = 400
    rng = np.random.default_rng(1)
    cam = np.tile([0, 1], n // 2)
    start = np.arange(n, dtype=float) * 1000
    end = start + 10
    # pairs (2k -> 2k+1): camera 0 -> 1 with a gap of about 500 frames
    start[1::2] = end[0::2] + rng.normal(500, 20, n // 2)
    end[1::2] = start[1::2] + 10
    meta = TrackletMeta(np.arange(n).astype(str), cam, start, end)
    rows, cols = np.arange(0, n, 2), np.arange(1, n, 2)
    model = TransitModel.estimate(meta, cols, rows, num_cams=3, bin_size=50, sigma=1, prior=1)
    assert model.table.shape[:2] == (3, 3)
    p = model.plausibility
    assert p(0, 0, 10, 1, 510, 520) > 0.9                 # typical gap, either argument order
    assert p(1, 510, 520, 0, 0, 10) == p(0, 0, 10, 1, 510, 520)
    assert p(0, 0, 10, 1, 2010, 2020) < 0.1               # atypical gap
    assert p(1, 0, 10, 0, 510, 520) == 1.0                 # direction 1 -> 0 never observed
    assert p(2, 0, 10, 2, 510, 520) == 1.0 and p(5, 0, 1, 0, 2, 3) == 1.0
    assert np.all((model.table >= 0) & (model.table <= 1))
    # a lazy Q x G matrix for the evaluator
    lazy = TransitPlausibility(model, meta, meta)
    block = lazy.rows(2, 5)
    assert block.shape == (3, n)
    assert block[0, 3] == pytest.approx(model.pairs(meta, np.array([2]), meta, np.array([3]))[0])


def test_transit_save_load(tmp_path):
    model = TransitModel(np.random.default_rng(0).random((2, 2, 5)), 25.0)
    model.save(str(tmp_path / "t.npz"))
    back = TransitModel.load(str(tmp_path / "t.npz"))
    np.testing.assert_array_equal(back.table, model.table)
    assert back.bin_size == 25.0


def test_scp_sts_on_sparse_equals_dense_and_test_side_formula():
    rng = np.random.default_rng(2)
    n = 40
    d = rng.random((n, n))
    d[d > 0.5] = 1.0
    np.fill_diagonal(d, 0)
    r, c = np.nonzero(d < 1)
    dist = sp.csr_matrix((d[r, c].astype(np.float32), (r, c)), shape=(n, n))
    cams = rng.integers(0, 3, n)
    p = rng.random((n, n))
    same = lambda a, b: cams[a] == cams[b]  # noqa: E731
    plaus = lambda a, b: p[a, b]  # noqa: E731
    out = apply_aux_terms(dist, same, 0.1, plaus, 0.6, 8.0)
    dense = apply_aux_terms(d, same, 0.1, plaus, 0.6, 8.0)
    want = (d + 0.1 * (cams[:, None] == cams[None])) * (1 + 0.6 * np.exp(-8 * p))
    np.testing.assert_allclose(dense, want, rtol=1e-6)
    np.testing.assert_allclose(out.toarray()[r, c], want[r, c], rtol=1e-6)
    assert out.nnz == dist.nnz and dist.data.max() < 1      # a copy; the input is untouched
    # unstored pairs stay >= 1 > any eps: sparse thresholding equals dense thresholding
    assert np.all(want[d >= 1] >= 1)
    # the test side (AuxTerms) applies the same formula
    aux = AuxTerms(n, n, same_camera=(cams[:, None] == cams[None]), plausibility=p,
                   cce_lambda=0.1, str_lambda=0.6, str_gamma=8.0)
    np.testing.assert_allclose(aux.apply(d.copy(), 0), want, rtol=1e-6)
    with pytest.raises(ValueError, match="lambda >= 0"):
        apply_aux_terms(dist, same, -0.1)
    assert apply_aux_terms(dist) is dist


def test_npz_round_trip_and_alignment_errors(tmp_path):
    rng = np.random.default_rng(3)
    samples = make_samples(rng, 30)
    aux = mine_train_aux(samples)
    path = save_aux(str(tmp_path / "train_aux.npz"), "train", {"train": aux.meta}, aux.cannot_link,
                    TransitModel(np.ones((3, 3, 4)), 50))
    toc, transit = load_aux(path, {"train": aux.meta})
    assert (toc != aux.cannot_link).nnz == 0 and transit.table.shape == (3, 3, 4)
    loaded = load_train_aux(str(tmp_path), samples)       # a folder holding train_aux.npz
    assert loaded.plausibility is not None and loaded.source == path
    with pytest.raises(AuxMismatchError) as e:             # wrong size: file, expected, found
        load_train_aux(path, samples[:25])
    assert path in str(e.value) and "(30,)" in str(e.value) and "(25,)" in str(e.value)
    swapped = samples[:]
    swapped[4], swapped[7] = swapped[7], swapped[4]
    with pytest.raises(AuxMismatchError, match="another order") as e:
        load_train_aux(path, swapped)
    assert "row 4" in str(e.value) and path in str(e.value)
    with pytest.raises(FileNotFoundError):
        load_train_aux(str(tmp_path / "missing.npz"), samples)
    # test side: Q x G
    q, g = make_samples(rng, 8, prefix="query"), make_samples(rng, 20, prefix="gallery")
    mined = mine_test_aux(q, g)
    assert mined["overlap"].shape == (8, 20) and mined["plausibility"] is None
    qm, gm = TrackletMeta.from_samples(q), TrackletMeta.from_samples(g)
    tpath = save_aux(str(tmp_path / "t" / "test_aux.npz"), "test", {"query": qm, "gallery": gm},
                     mined["overlap"], TransitModel(np.ones((3, 3, 2)), 50))
    out = load_test_aux(str(tmp_path / "t"), q, g)
    assert (out["overlap"] != mined["overlap"]).nnz == 0 and out["plausibility"].shape == (8, 20)
    with pytest.raises(AuxMismatchError, match="gallery list has shape"):
        load_test_aux(tpath, q, g[:19])


def test_legacy_pickles_need_opt_in(tmp_path):
    rng = np.random.default_rng(4)
    samples = make_samples(rng, 6)
    sets = [{1}, {0}, set(), set(), set(), set()]
    with open(tmp_path / "cannotlink_pts.pickle", "wb") as f:
        pickle.dump(sets, f)
    with open(tmp_path / "cross_camera_relation_train.pickle", "wb") as f:
        pickle.dump(np.eye(6, dtype=np.float32), f)
    with pytest.raises(PermissionError, match="ALLOW_PICKLE"):
        load_train_aux(str(tmp_path), samples)
    aux = load_train_aux(str(tmp_path), samples, allow_pickle=True)
    assert aux.cannot_link.toarray()[0, 1] and aux.cannot_link.nnz == 2
    assert aux.same_camera(np.array([2]), np.array([2]))[0] == 1 and aux.plausibility is None
    with open(tmp_path / "spatio_temporal_relation_train.pickle", "wb") as f:
        pickle.dump(torch.zeros(5, 6), f)                  # wrong shape: named file and shapes
    with pytest.raises(AuxMismatchError) as e:
        load_train_aux(str(tmp_path), samples, allow_pickle=True)
    msg = str(e.value)
    assert "spatio_temporal_relation_train.pickle" in msg and "(5, 6)" in msg and "(6, 6)" in msg
    with pytest.raises(AuxMismatchError, match="7 tracklets"):
        with open(tmp_path / "cannotlink_pts.pickle", "wb") as f:
            pickle.dump(sets + [set()], f)
        load_train_aux(str(tmp_path), samples, allow_pickle=True)


def test_must_link_groups_and_majority():
    frames = lambda folder, k: tuple(f"/d/{folder}/{j}.jpg" for j in range(k))  # noqa: E731
    samples = [Sample(frames("a", 4), 0, 0), Sample(frames("a", 4), 0, 0), Sample(frames("a", 3), 0, 0),
               Sample(frames("b", 4), 1, 1), Sample(frames("c", 4), 2, 0), Sample(frames("c", 4), 2, 0)]
    groups = tracklet_groups(samples)
    assert groups[3] == -1 and groups[0] == groups[1] == groups[2] != groups[4] == groups[5]
    labels = np.array([3, 3, 5, 5, -1, -1])
    # group a -> majority 3; b alone keeps 5; c all outliers stays outliers; renumbered 0..C-1
    assert apply_must_link(labels, groups).tolist() == [0, 0, 0, 1, -1, -1]
    tie = np.array([4, 2, -1, 0, 1, -1])                   # tie 4 vs 2 -> the smaller label (2)
    assert apply_must_link(tie, groups).tolist() == [2, 2, 2, 0, 1, 1]
    with pytest.raises(ValueError, match="single images"):
        tracklet_groups([Sample(("/d/x/1.jpg",), 0, 0), Sample(("/d/x/2.jpg",), 0, 0)])


def test_size_histogram(tmp_path):
    labels = np.array([0] * 3 + [1] * 3 + [2] * 40 + [-1] * 5)
    names, counts = size_classes(labels)
    assert names[:3] == ["1", "2", "3"] and counts[2] == 2 and names[-1] == "33-64" and counts[-1] == 1
    path = cluster_size_histogram(labels, str(tmp_path / "h" / "sizes.png"), "epoch 1:")
    with Image.open(path) as im:
        assert im.size[0] > 100 and im.format == "PNG"
    cluster_size_histogram(np.array([-1, -1]), str(tmp_path / "empty.png"))


def test_pseudo_labeler_with_all_terms(tmp_path):
    rng = np.random.default_rng(5)
    samples = make_samples(rng, 120, cams=3, span=300)
    pids = np.array([s.pid for s in samples])
    x = rng.normal(size=(11, 16))[pids] + rng.normal(scale=0.3, size=(120, 16))
    cfg = get_cfg()
    opts = ["CLUSTER.K1", 10, "CLUSTER.K2", 3, "CLUSTER.MIN_SAMPLES", 2, "CLUSTER.ADAPTIVE", True,
            "CLUSTER.ADAPTIVE_RHO", 0.05, "CLUSTER.TOC.ENABLED", True, "CLUSTER.SCP.ENABLED", True,
            "CLUSTER.STS.ENABLED", True, "CLUSTER.MUST_LINK", True]
    cfg.merge_from_list([str(o) for o in opts])
    labeler = PseudoLabeler(cfg, samples, str(tmp_path))
    assert type(labeler.clusterer).__name__ == "ICDBSCAN"
    result = labeler(torch.from_numpy(x.astype(np.float32)))
    labels = result.labels
    assert labels.shape == (120,) and labels.max() >= 1 and 0 < result.eps < 1
    for name in ("train_aux.npz", "transit.npz"):
        assert os.path.isfile(tmp_path / "auxinfo" / name)
    # TOC: no cannot-linked pair shares a cluster (RELAXED 0, no zero distances), except through
    # must-link, which never joins overlapping chunks (one tracklet's chunks do not overlap)
    r, c = labeler.aux.cannot_link.nonzero()
    assert not np.any((labels[r] == labels[c]) & (labels[r] >= 0))
    assert labeler.state_dict()["eps"] == result.eps
    # MARS-like samples without time: a clear error
    timeless = [s._replace(timestamps=()) for s in samples]
    with pytest.raises(ValueError, match="no timestamps"):
        PseudoLabeler(cfg, timeless).aux


@pytest.mark.slow
def test_training_with_aux_options(tiny_root, tmp_path):
    from unreidusl.engine import DefaultTrainer, default_setup, setup_cfg
    from unreidusl.utils.checkpoint import load_checkpoint

    opts = tiny_opts(tiny_root, tmp_path, **{
        "SOLVER.MAX_EPOCHS": 1, "TEST.EVAL_PERIOD": 0, "CLUSTER.ADAPTIVE": True,
        "CLUSTER.ADAPTIVE_RHO": 0.03, "CLUSTER.TOC.ENABLED": True, "CLUSTER.SCP.ENABLED": True,
        "CLUSTER.STS.ENABLED": True})
    cfg = setup_cfg("", opts)
    default_setup(cfg)
    trainer = DefaultTrainer(cfg)
    trainer.train()
    for rel in ("auxinfo/train_aux.npz", "auxinfo/transit.npz", "clusters/sizes_epoch_001.png"):
        assert (tmp_path / rel).is_file(), rel
    state = load_checkpoint(str(tmp_path / "model_final.pth"))["hooks"]["PseudoLabelHook"]
    assert 0 < float(state["eps"]) < 1 and "labels" in state
    assert "eps" in (tmp_path / "log.txt").read_text()


def test_build_test_aux_for_the_evaluator(tmp_path):
    from unreidusl.auxinfo import build_test_aux
    from unreidusl.evaluation.evaluator import ReidEvaluator

    rng = np.random.default_rng(6)
    q, g = make_samples(rng, 6, prefix="query"), make_samples(rng, 15, prefix="gallery")
    cfg = get_cfg()
    cfg.OUTPUT_DIR = str(tmp_path)
    assert build_test_aux(cfg, q, g) == {}
    cfg.TEST.TOC.ENABLED, cfg.TEST.SCP.ENABLED, cfg.TEST.STS.ENABLED = True, True, True
    with pytest.raises(ValueError, match="transit model"):
        build_test_aux(cfg, q, g)
    TransitModel(np.full((3, 3, 2), 0.5), 50).save(str(tmp_path / "auxinfo" / "transit.npz"))
    kw = build_test_aux(cfg, q, g)
    assert kw["overlap"].shape == (6, 15) and kw["plausibility"].rows(0, 6).shape == (6, 15)
    ev = ReidEvaluator(cfg, q, g, **kw)
    assert ev.aux.active == ["TOC", "SCP", "STS"]
