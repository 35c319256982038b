"""Benchmark: dataset metadata loading and per-sample decoding.

    python benchmarks/bench_data.py                 # 30,000 images, full-size MARS info/, Duke-video
    python benchmarks/bench_data.py --images 30000 --duke-tracklets 2000 --repeat 3
    python benchmarks/bench_data.py --synthetic-root /tmp/syn30k   # + a generated ~30k-image twin

* ``market-30k``: a Market-1501 folder of N empty ``.jpg`` files with valid names (readers never
  open images at load time), loaded with ``Market1501`` (listing + name parsing);
* ``synthetic-30k`` (with ``--synthetic-root``): a real generated Market-1501 twin of about
  30,000 JPEGs (preset small with 700 + 700 + 100 identities; generated once, about 1-2 min on
  two cores, then reused), loaded with ``Market1501``;
* ``mars-full``: synthesised MARS ``info/`` files with the published counts (8,298 train
  tracklets / 509,914 frames of 625 ids; 12,180 test rows / 681,089 frames with 1,980 queries),
  loaded with ``MARS`` (name lists, .mat tables, per-frame consistency checks);
* ``duke-video``: a DukeMTMC-VideoReID tree of empty files (``--duke-tracklets`` tracklets of 20-80
  frames), first scan (cache written) and a cached load (fingerprint of the folders only);
* ``decode``: items per second of the image and clip loaders (decode + resize + augmentation)
  on synthetic 128x64 JPEGs resized to 256x128, next to the previous per-image PIL pipeline
  (torchvision v1 Compose) for reference.

Times are wall-clock, best of ``--repeat``.
"""
from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)


def best_of(fn, repeat):
    times, out = [], None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return min(times), out


def make_market(root, n):
    base = os.path.join(root, "Market-1501-v15.09.15")
    counts = {"bounding_box_train": int(n * 0.40), "query": int(n * 0.10)}
    counts["bounding_box_test"] = n - sum(counts.values())
    k = 0
    for folder, m in counts.items():
        os.makedirs(os.path.join(base, folder))
        for i in range(m):
            pid = -1 if folder == "bounding_box_test" and i % 50 == 0 else 1 + (i // 8) % 1500
            name = f"{pid:04d}_c{1 + i % 6}s1_{k:06d}_01.jpg" if pid >= 0 else f"-1_c{1 + i % 6}s1_{k:06d}_01.jpg"
            open(os.path.join(base, folder, name), "wb").close()
            k += 1
    return n


def make_mars(root):
    from scipy.io import savemat

    base = os.path.join(root, "MARS", "info")
    os.makedirs(base)
    rng = np.random.default_rng(0)

    def write(split, rows, total_frames):
        lengths = rng.multinomial(total_frames - len(rows), np.ones(len(rows)) / len(rows)) + 1
        names, table, counter = [], [], {}
        for (pid, cam), n in zip(rows, lengths):
            t = counter[(pid, cam)] = counter.get((pid, cam), 0) + 1
            p4 = "00-1" if pid < 0 else f"{pid:04d}"
            start = len(names) + 1
            names += [f"{p4}C{cam}T{t:04d}F{f:03d}.jpg" for f in range(1, n + 1)]
            table.append([start, len(names), pid, cam])
        with open(os.path.join(base, f"{split}_name.txt"), "w") as f:
            f.write("\n".join(names) + "\n")
        savemat(os.path.join(base, f"tracks_{split}_info.mat"),
                {f"track_{split}_info": np.asarray(table, dtype=np.float64)})

    write("train", [(1 + 2 * (k % 625), 1 + k % 6) for k in range(8298)], 509914)
    test = [(-1, 1 + k % 6) for k in range(870)] + [(0, 1 + k % 6) for k in range(1500)]
    test += [(2 + 2 * (k % 636), 1 + (k // 636) % 6) for k in range(12180 - len(test))]
    write("test", test, 681089)
    savemat(os.path.join(base, "query_IDX.mat"),
            {"query_IDX": np.asarray([2371 + 4 * k for k in range(1980)], dtype=np.float64)[None]})


def make_duke_video(root, n_tracklets):
    base = os.path.join(root, "DukeMTMC-VideoReID")
    rng = np.random.default_rng(0)
    frames = 0
    for k in range(n_tracklets):
        split = ("train", "query", "gallery")[0 if k % 2 == 0 else 1 + (k % 4 == 1)]
        pid = 1 + k // 3
        d = os.path.join(base, split, f"{pid:04d}", f"{k % 3 + 1:04d}")
        os.makedirs(d)
        n = int(rng.integers(20, 81))
        cam = 1 + k % 8
        for f in range(1, n + 1):
            open(os.path.join(d, f"{pid:04d}_C{cam}_F{f:04d}_X{1000 + 5 * f:05d}.jpg"), "wb").close()
        frames += n
    return frames


def bench_decode(repeat):
    import torch
    import torchvision.transforms as T

    from unreidusl.config import get_cfg
    from unreidusl.data import Sample, SampleDataset
    from unreidusl.data.common import read_image
    from unreidusl.data.synthetic import make_synthetic
    from unreidusl.data.transforms import build_transforms

    tmp = tempfile.mkdtemp(prefix="bench-decode-")
    try:
        path = make_synthetic(root=tmp, fmt="dukemtmc-videoreid", seed=0, preset="tiny")
        frames = sorted(str(p) for p in path.rglob("*.jpg"))[:256]
        cfg = get_cfg()
        images = [Sample((f,), 0, 0) for f in frames]
        clips = [Sample(tuple(frames[i:i + 8]), 0, 0) for i in range(0, 256, 8)]
        torch.set_num_threads(1)
        out = {}
        for train in (True, False):
            tf = build_transforms(cfg, train)
            ds = SampleDataset(images, tf)
            t, _ = best_of(lambda: [ds[i] for i in range(len(ds))], repeat)
            out[f"image items/s ({'train' if train else 'test'})"] = len(ds) / t
            cds = SampleDataset(clips, tf, seq_len=4, random_clips=True)
            t, _ = best_of(lambda: [cds[i] for i in range(len(cds))], repeat)
            out[f"clip(4) items/s ({'train' if train else 'test'})"] = len(cds) / t
        i = cfg.INPUT
        old = T.Compose([T.Resize(tuple(i.SIZE_TRAIN), interpolation=T.InterpolationMode.BICUBIC),
                         T.RandomHorizontalFlip(), T.Pad(10), T.RandomCrop(tuple(i.SIZE_TRAIN)),
                         T.ToTensor(), T.Normalize(i.PIXEL_MEAN, i.PIXEL_STD), T.RandomErasing()])
        t, _ = best_of(lambda: [old(read_image(f)) for f in frames], repeat)
        out["previous PIL pipeline items/s (train)"] = len(frames) / t
        return out
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--images", type=int, default=30000)
    p.add_argument("--duke-tracklets", type=int, default=1500)
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--synthetic-root", default="",
                   help="also time a generated ~30k-image Market-1501 twin kept in this folder")
    p.add_argument("--skip", nargs="*", default=[], choices=["market", "mars", "duke", "decode"])
    args = p.parse_args(argv)

    from unreidusl.config import get_cfg
    from unreidusl.data.datasets import MARS, DukeMTMCVideoReID, Market1501

    tmp = tempfile.mkdtemp(prefix="bench-data-")
    rows = []
    try:
        if "market" not in args.skip:
            make_market(tmp, args.images)
            t, ds = best_of(lambda: Market1501(tmp), args.repeat)
            n = len(ds.train) + len(ds.query) + len(ds.gallery)
            rows.append((f"market-{args.images // 1000}k: load {args.images} image names "
                         f"({n} samples after junk)", t))
        if args.synthetic_root:
            from unreidusl.data.synthetic import make_synthetic

            make_synthetic(root=args.synthetic_root, fmt="market1501", seed=0, preset="small",
                           num_train_ids=700, num_test_ids=700, num_extra_ids=100,
                           images_per_tracklet=(4, 7), entry_span_s=3600.0)
            t, ds = best_of(lambda: Market1501(args.synthetic_root), args.repeat)
            n = len(ds.train) + len(ds.query) + len(ds.gallery)
            rows.append((f"synthetic-30k: load a generated Market-1501 twin ({n} images after junk)", t))
        if "mars" not in args.skip:
            make_mars(tmp)
            t, ds = best_of(lambda: MARS(tmp), args.repeat)
            stats = {r[0]: r for r in ds.statistics()}
            rows.append((f"mars-full: {stats['train'][2]} train ({stats['train'][4]} frames), "
                         f"{stats['query'][2]} query, {stats['gallery'][2]} gallery tracklets", t))
        if "duke" not in args.skip:
            frames = make_duke_video(tmp, args.duke_tracklets)
            cfg = get_cfg()
            cfg.DATASETS.CACHE_DIR = os.path.join(tmp, "cache")
            t0 = time.perf_counter()
            DukeMTMCVideoReID(tmp, cfg)
            rows.append((f"duke-video: first scan of {args.duke_tracklets} tracklets / {frames} frames", time.perf_counter() - t0))
            t, _ = best_of(lambda: DukeMTMCVideoReID(tmp, cfg), args.repeat)
            rows.append(("duke-video: cached load", t))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    for name, t in rows:
        print(f"{name:<95} {t:7.3f} s")
    if "decode" not in args.skip:
        for name, v in bench_decode(args.repeat).items():
            print(f"decode {name:<88} {v:7.0f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
