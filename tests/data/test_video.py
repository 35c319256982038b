"""Video pipeline: clip sampling, clip-consistent transforms, loaders, all-frames extraction with
temporal average pooling in bounded memory, clustering clips, video evaluation, corrupt frames."""
import logging
from itertools import islice

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from unreidusl.data import (CorruptImageError, FrameDataset, Sample, SampleDataset, build_cluster_loader,
                            build_dataset, build_inference_loader, build_train_loader, clip_indices)
from unreidusl.data.synthetic import make_synthetic
from unreidusl.data.transforms import build_transforms
from unreidusl.engine import setup_cfg
from unreidusl.evaluation import ReidEvaluator, extract_features
from unreidusl.evaluation.extract import extract_cluster_features


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    root = tmp_path_factory.mktemp("datasets")
    for fmt in ("dukemtmc-videoreid", "market1501"):
        make_synthetic(root=root / "synthetic" / "tiny-seed0", fmt=fmt, seed=0, preset="tiny")
    return root


def make_cfg(root, tmp_path, **opts):
    base = {"DATASETS.ROOT": root, "DATASETS.SYNTHETIC.PRESET": "tiny",
            "DATASETS.CACHE_DIR": tmp_path / "cache", "INPUT.SIZE_TRAIN": "[32,16]",
            "INPUT.SIZE_TEST": "[32,16]", "DATALOADER.NUM_WORKERS": 0, "SOLVER.IMS_PER_BATCH": 8,
            "DATALOADER.NUM_INSTANCES": 2, "DATALOADER.TRAIN_SEQ_LEN": 4,
            "DATALOADER.CLUSTER_SEQ_LEN": 6, "TEST.IMS_PER_BATCH": 16, "CLUSTER.IMS_PER_BATCH": 24}
    base.update(opts)
    flat = []
    for k, v in base.items():
        flat += [k, str(v)]
    return setup_cfg("", flat)


@pytest.fixture(scope="module")
def video(root, tmp_path_factory):
    cfg = make_cfg(root, tmp_path_factory.mktemp("o"))
    return build_dataset(cfg, "SyntheticDukeMTMCVideoReID")


class TinyReID(nn.Module):
    """The model contract in miniature: frame_features → temporal mean → embed (affine BN in eval)."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.conv = nn.Conv2d(3, 8, 3, stride=2)
        self.neck = nn.BatchNorm1d(8)
        self.neck.running_mean.uniform_(-0.1, 0.1)
        self.neck.running_var.uniform_(0.5, 2.0)

    def frame_features(self, x):
        return F.adaptive_avg_pool2d(F.relu(self.conv(x)), 1).flatten(1)

    def embed(self, pooled):
        return F.normalize(self.neck(pooled), dim=1)

    def forward(self, batch):
        x = batch["images"]
        if x.dim() == 5:
            b, t = x.shape[:2]
            return self.embed(self.frame_features(x.flatten(0, 1)).view(b, t, -1).mean(1))
        return self.embed(self.frame_features(x))


# ----------------------------------------------------------------------------- clip sampling
def test_clip_indices_random_window_cyclic_padding_evenly_all():
    rng = np.random.default_rng(0)
    starts = set()
    for _ in range(300):
        idx = clip_indices(10, 4, "random", rng)
        assert len(idx) == 4 and np.all(np.diff(idx) == 1)
        starts.add(int(idx[0]))
    assert starts == set(range(7))  # the last frame (9) is reachable: window 6..9
    assert clip_indices(3, 7, "random", rng).tolist() == [0, 1, 2, 0, 1, 2, 0]
    assert clip_indices(10, 4, "random").tolist() == [3, 4, 5, 6]  # deterministic: centred
    assert clip_indices(12, 4, "evenly").tolist() == [1, 4, 7, 10]
    ev = clip_indices(12, 4, "evenly", rng)
    assert all(3 * i <= v < 3 * i + 3 for i, v in enumerate(ev))
    assert clip_indices(3, 6, "evenly").tolist() == [0, 0, 1, 1, 2, 2]
    assert clip_indices(5, 99, "all").tolist() == [0, 1, 2, 3, 4]
    with pytest.raises(ValueError, match="random"):
        clip_indices(5, 2, "bogus")


# ---------------------------------------------------------------------------------- transforms
def test_augmentation_is_clip_consistent_unless_disabled(root, tmp_path, video):
    s = video.train[0]
    same = Sample((s.frames[0],) * 6, 0, 0, ())
    opts = {"INPUT.REA.PROB": 1.0, "INPUT.CJ.ENABLED": True, "INPUT.CJ.PROB": 1.0}
    torch.manual_seed(1)
    cfg = make_cfg(root, tmp_path, **opts)
    clip = SampleDataset([same], build_transforms(cfg, True), seq_len=6, random_clips=True)[0]["images"]
    assert clip.shape == (6, 3, 32, 16)
    assert all(torch.equal(clip[0], clip[t]) for t in range(6))
    cfg = make_cfg(root, tmp_path, **{**opts, "INPUT.CLIP_CONSISTENT": False})
    clip = SampleDataset([same], build_transforms(cfg, True), seq_len=6, random_clips=True)[0]["images"]
    assert not all(torch.equal(clip[0], clip[t]) for t in range(6))


def test_test_transform_matches_plain_normalisation(root, tmp_path, video):
    from PIL import Image

    cfg = make_cfg(root, tmp_path)
    path = video.query[0].frames[0]
    out = SampleDataset([Sample((path,), 1, 0)], build_transforms(cfg, False))[0]["images"]
    img = np.asarray(Image.open(path).convert("RGB").resize((16, 32), Image.BICUBIC), dtype=np.float32)
    ref = (torch.from_numpy(img).permute(2, 0, 1) / 255 - torch.tensor(cfg.INPUT.PIXEL_MEAN).view(3, 1, 1)) \
        / torch.tensor(cfg.INPUT.PIXEL_STD).view(3, 1, 1)
    assert out.shape == (3, 32, 16) and torch.allclose(out, ref, atol=1e-5)


# ------------------------------------------------------------------------------------ loaders
def test_train_loader_clips_and_images_seeded_by_seed_and_epoch(root, tmp_path, video):
    cfg = make_cfg(root, tmp_path)
    first = [b for b in islice(iter(build_train_loader(cfg, video.train, epoch=0)), 2)]
    again = [b for b in islice(iter(build_train_loader(cfg, video.train, epoch=0)), 2)]
    other = next(iter(build_train_loader(cfg, video.train, epoch=1)))
    b = first[0]
    assert b["images"].shape == (8, 4, 3, 32, 16)
    assert b["targets"].view(4, 2).unique(dim=1).shape[1] == 1  # P x K blocks of one pid
    for x, y in zip(first, again):
        assert torch.equal(x["images"], y["images"]) and torch.equal(x["index"], y["index"])
    assert not torch.equal(other["images"], first[0]["images"])
    market = build_dataset(cfg, "SyntheticMarket1501")
    img = next(iter(build_train_loader(cfg, market.train, epoch=0)))
    assert img["images"].shape == (8, 3, 32, 16)  # one-frame samples: no clip dimension


def test_all_frames_extraction_is_exact_temporal_average_in_bounded_chunks(root, tmp_path, video):
    cfg = make_cfg(root, tmp_path)
    model = TinyReID().eval()
    samples = video.query[:5]
    loader = build_inference_loader(cfg, samples, batch_size=3)  # tracklets span many batches
    assert isinstance(loader.dataset, FrameDataset)
    assert len(loader.dataset) == sum(len(s.frames) for s in samples)
    batches = list(loader)
    assert max(len(b["index"]) for b in batches) == 3 and batches[0]["images"].dim() == 4
    feats = extract_features(model, loader)
    assert feats.shape == (5, 8)
    tf = build_transforms(cfg, False)
    with torch.no_grad():
        for i, s in enumerate(samples):
            clip = tf(tf.load(s.frames)).unsqueeze(0)  # every frame at once
            ref = model({"images": clip})[0]
            assert torch.allclose(feats[i], ref, atol=1e-5)
    big = extract_features(model, build_inference_loader(cfg, samples, batch_size=64))
    assert torch.allclose(feats, big, atol=1e-6)


def test_real_model_accepts_clips_and_frame_path(root, tmp_path, video):
    from unreidusl.modeling import build_model

    cfg = make_cfg(root, tmp_path, **{"MODEL.BACKBONE.DEPTH": 18, "MODEL.BACKBONE.LAST_STRIDE": 2})
    model = build_model(cfg).eval()
    samples = video.gallery[:2]
    feats = extract_features(model, build_inference_loader(cfg, samples, batch_size=7))
    tf = build_transforms(cfg, False)
    with torch.no_grad():
        for i, s in enumerate(samples):
            ref = model({"images": tf(tf.load(s.frames)).unsqueeze(0)})[0].cpu()
            assert torch.allclose(feats[i], ref, atol=1e-4)
    assert torch.allclose(feats.norm(dim=1), torch.ones(2), atol=1e-5)


def test_video_evaluation_uses_tracklet_features(root, tmp_path, video):
    cfg = make_cfg(root, tmp_path)
    model = TinyReID()
    ev = ReidEvaluator(cfg, video.query, video.gallery)
    metrics = ev.evaluate(model)
    assert 0 <= metrics["mAP"] <= 100 and "Rank-1" in metrics
    feats = extract_features(model, build_inference_loader(cfg, video.query + video.gallery, 16))
    assert feats.shape[0] == len(video.query) + len(video.gallery)
    nq = len(video.query)
    assert ev.evaluate_features(feats[:nq], feats[nq:])["mAP"] == pytest.approx(metrics["mAP"])


def test_cluster_loader_draws_and_row_order(root, tmp_path, video):
    cfg = make_cfg(root, tmp_path, **{"DATALOADER.CLUSTER_SAMPLE_MULTI": 3})
    samples = video.train[:6]
    loader = build_cluster_loader(cfg, samples, epoch=0)
    ds = loader.dataset
    assert ds.draws == 3 and len(ds) == 18 and loader.batch_size == 24 // 6
    b = next(iter(loader))
    assert b["images"].shape == (4, 6, 3, 32, 16) and b["index"].tolist() == [0, 1, 2, 3]
    assert b["targets"].tolist() == [samples[0].pid] * 3 + [samples[1].pid]
    for k in range(18):  # row k = i*R + r holds frames of sample i
        assert set(ds._frames(samples[k // 3], k)) <= set(samples[k // 3].frames)
    model = TinyReID()
    f0, owner = extract_cluster_features(model, cfg, samples, epoch=0)
    f0b, _ = extract_cluster_features(model, cfg, samples, epoch=0)
    f1, _ = extract_cluster_features(model, cfg, samples, epoch=1)
    assert f0.shape == (18, 8) and owner.tolist() == [i for i in range(6) for _ in range(3)]
    assert torch.equal(f0, f0b) and not torch.equal(f0, f1)
    market = build_dataset(cfg, "SyntheticMarket1501")
    fi, owner = extract_cluster_features(model, cfg, market.train[:10])
    assert fi.shape == (10, 8) and owner.tolist() == list(range(10))  # images: one row each


# ----------------------------------------------------------------------------- corrupt frames
def test_corrupt_frame_in_clip_and_frame_loader(root, tmp_path, video, caplog):
    import shutil

    frames = [str(tmp_path / f"f{i}.jpg") for i in range(4)]
    for f, src in zip(frames, video.train[0].frames):
        shutil.copy(src, f)
    with open(frames[2], "wb") as fh:
        fh.write(b"not a jpeg")
    s = Sample(tuple(frames), 0, 0, ())
    cfg = make_cfg(root, tmp_path)
    with pytest.raises(CorruptImageError) as e:
        SampleDataset([s], build_transforms(cfg, False), seq_len=4)[0]
    assert frames[2] in str(e.value) and "DATASETS.SKIP_CORRUPT" in str(e.value)
    clip = SampleDataset([s], build_transforms(cfg, False), skip_corrupt=True, seq_len=4)[0]["images"]
    assert clip.shape[0] == 4 and any(torch.equal(clip[2], clip[j]) for j in (0, 1, 3))  # replaced
    with pytest.raises(CorruptImageError, match="f2.jpg"):
        extract_features(TinyReID(), build_inference_loader(cfg, [s], 2))
    caplog.set_level(logging.WARNING)
    cfg = make_cfg(root, tmp_path, **{"DATASETS.SKIP_CORRUPT": True})
    bad = Sample((frames[2],), 0, 0, ())
    feats = extract_features(TinyReID(), build_inference_loader(cfg, [s, bad, s], 2, mode="frames"))
    assert torch.allclose(feats[0], feats[2]) and torch.all(feats[1] == 0)
    assert "f2.jpg" in caplog.text and "no readable frame" in caplog.text
