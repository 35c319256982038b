"""Benchmark: approximate kNN (``faiss_ivf`` / ``faiss_hnsw``) vs exact kNN for Jaccard + DBSCAN.

    python benchmarks/bench_ann.py --sizes 50000 200000 --exact-max 50000
    nice -n 10 python benchmarks/bench_ann.py --sizes 1000000 --exact-max 0 --on-disk

Features: ``make_features`` of ``bench_cluster.py`` (clustered unit vectors, ``--per-cluster``
members per Gaussian cluster on average, within-cluster cosine about 0.5); with ``--on-disk`` they
are written chunk by chunk into a float32 file (``utils/feature_file.py``) that every case reads as a
read-only ``numpy.memmap``. Every case runs in its own subprocess, so its peak RSS (``VmHWM``, the
whole process: imports and features included; the pages of a memmap it has read count too, though
the kernel can drop them at any time) is its own; ``peak anon MB`` is the largest anonymous
(not file-backed) resident memory, sampled every 0.2 s:

* ``approx``: ``knn_search`` with the approximate backend (``CLUSTER.ANN`` defaults unless given),
  then ``jaccard_distance(knn=...)`` and ``dbscan_sparse`` (as ``bench_cluster.py``, pruned at
  ``--max-dist`` = eps as training does); ``recall@k1`` is the search's own recall check
  (``--recall-queries`` sampled rows against an exact search);
* ``exact`` (N <= ``--exact-max``): the same with the exact ``--exact-backend``; ``ARI`` compares the
  two partitions (every DBSCAN outlier a singleton);
* ``exact kNN est.``: the exact kNN of ``--sample`` random rows against all N rows (faiss backend:
  one pass over the features),
  extrapolated to the self-search as ``t x N / sample / 2`` (the self-search computes only the
  tiles on and above the diagonal, half the products); ``in-cluster`` is the share of those exact
  lists that are members of the row's own generated cluster (the rest are nearest neighbours from
  other clusters, at distances that differ by noise only, which no index finds cheaply).

``speed-up`` = exact total / approx total, or exact kNN est. / approx total where the exact path
is not run (labelled ``est.``).
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import subprocess
import sys
import tempfile
import threading
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "benchmarks"))
sys.path.insert(0, ROOT)

from bench_cluster import make_features  # noqa: E402

HEADERS = ["N", "run", "kNN s", "Jaccard+DBSCAN s", "total s", "speed-up", "peak RSS MB",
           "peak anon MB", "recall@k1", "in-cluster", "ARI vs exact", "clusters", "outliers %", "note"]


def _status_mb(key) -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1]) / 1024.0
    return float("nan")


def _hwm_mb() -> float:
    return _status_mb("VmHWM")


class _AnonPeak:
    """The largest ``RssAnon`` seen by a background thread sampling every 0.2 s."""

    def __init__(self) -> None:
        self.peak = _status_mb("RssAnon")
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(0.2):
            self.peak = max(self.peak, _status_mb("RssAnon"))

    def stop(self) -> float:
        self._stop.set()
        self._thread.join()
        return max(self.peak, _status_mb("RssAnon"))


def _table(rows) -> str:
    from tabulate import tabulate

    cells = [[f"{c:.1f}" if isinstance(c, float) else c for c in r] for r in rows]
    return tabulate(cells, headers=HEADERS, tablefmt="github", missingval="-", disable_numparse=True)


def _features(args, n):
    from unreidusl.utils.feature_file import open_feature_file

    if args.file:
        return open_feature_file(args.file, n, args.dim), np.load(args.file + ".labels.npy")
    return make_features(n, args.dim, args.seed, args.per_cluster, args.sigma)


def _ann_params(args):
    from unreidusl.cluster.ann import AnnParams

    return AnnParams(nlist=args.nlist, nprobe=args.nprobe, hnsw_m=args.hnsw_m, ef_search=args.ef_search,
                     ef_construction=args.ef_construction, pca_dim=args.pca_dim, refine=args.refine,
                     recall_queries=args.recall_queries)


def worker(args) -> None:
    import torch  # noqa: F401  (its import belongs to every case's baseline)

    from unreidusl.cluster.ann import ann_search
    from unreidusl.cluster.dbscan import dbscan_sparse
    from unreidusl.cluster.jaccard import jaccard_distance
    from unreidusl.cluster.knn import knn_search

    n = args.worker
    anon = _AnonPeak()
    x, truth = _features(args, n)
    res = {"base_mb": _hwm_mb()}
    t0 = time.perf_counter()
    if args.mode == "sample":
        rows = np.sort(np.random.default_rng(args.seed + 1).choice(n, min(n, args.sample), replace=False))
        _, idx = knn_search(np.ascontiguousarray(x[rows]), x, k=args.k1, backend="faiss")
        t = time.perf_counter() - t0
        res.update(knn_s=t * n / rows.shape[0] / 2.0, sample_s=t, rows=int(rows.shape[0]),
                   in_cluster=float((truth[idx] == truth[rows][:, None]).mean()), peak_mb=_hwm_mb(),
                   anon_mb=anon.stop())
        print("RESULT " + json.dumps(res), flush=True)
        return
    if args.mode == "approx":
        d2, idx, info = ann_search(x, k=args.k1, backend=args.backend, params=_ann_params(args),
                                   desc="kNN")
        res.update(recall=info["recall"], params=info["params"], phases=info["phases"])
    else:
        d2, idx = knn_search(x, k=args.k1, backend=args.exact_backend)
    t1 = time.perf_counter()
    dist = jaccard_distance(x, args.k1, args.k2, knn=(d2, idx), max_dist=args.max_dist)
    del d2, idx
    labels = dbscan_sparse(dist, args.eps, 4)
    t2 = time.perf_counter()
    np.save(args.out, labels)
    res.update(knn_s=t1 - t0, cluster_s=t2 - t1, total_s=t2 - t0, peak_mb=_hwm_mb(), anon_mb=anon.stop(),
               clusters=int(labels.max() + 1), outliers=float((labels == -1).mean()))
    print("RESULT " + json.dumps(res), flush=True)


def _run(args, n, mode, out, file):
    cmd = [sys.executable, os.path.abspath(__file__), "--worker", str(n), "--mode", mode, "--out", out,
           "--file", file]
    for key in ("dim", "k1", "k2", "eps", "max_dist", "per_cluster", "sigma", "seed", "backend",
                "exact_backend", "sample", "nlist", "nprobe", "hnsw_m", "ef_search", "ef_construction",
                "pca_dim", "refine", "recall_queries"):
        cmd += [f"--{key.replace('_', '-')}", str(getattr(args, key))]
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, text=True)
    for line in proc.stdout.splitlines():
        if line.startswith("RESULT "):
            return json.loads(line[7:])
    raise RuntimeError(f"{mode} case N={n} failed (exit status {proc.returncode})")


def _ari(a, b) -> float:
    from sklearn.metrics import adjusted_rand_score

    def singletons(labels):
        labels = labels.copy()
        out = labels < 0
        labels[out] = labels.max() + 1 + np.arange(out.sum())
        return labels

    return float(adjusted_rand_score(singletons(a), singletons(b)))


def _write_features(args, n, path) -> None:
    from unreidusl.utils.feature_file import open_feature_file

    mm = open_feature_file(path, n, args.dim, "w+")
    _, labels = make_features(n, args.dim, args.seed, args.per_cluster, args.sigma, out=mm)
    mm.flush()
    del mm
    np.save(path + ".labels.npy", labels)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--sizes", type=int, nargs="+", default=[50000, 200000])
    p.add_argument("--dim", type=int, default=2048)
    p.add_argument("--exact-max", type=int, default=50000,
                   help="largest N whose exact kNN + Jaccard + DBSCAN runs in full")
    p.add_argument("--on-disk", action="store_true", help="features in a memory-mapped file")
    p.add_argument("--tmp", default=None, help="folder of the feature files (default: system temp)")
    p.add_argument("--backend", default="faiss_ivf", choices=["faiss_ivf", "faiss_hnsw"])
    p.add_argument("--exact-backend", default="torch", choices=["torch", "numpy", "faiss"])
    p.add_argument("--sample", type=int, default=1000, help="query rows of the exact kNN estimate")
    p.add_argument("--k1", type=int, default=30)
    p.add_argument("--k2", type=int, default=6)
    p.add_argument("--eps", type=float, default=0.6)
    p.add_argument("--max-dist", type=float, default=0.6)
    p.add_argument("--per-cluster", type=int, default=32)
    p.add_argument("--sigma", type=float, default=1.0)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--nlist", type=int, default=0)
    p.add_argument("--nprobe", type=int, default=16)
    p.add_argument("--hnsw-m", type=int, default=32)
    p.add_argument("--ef-search", type=int, default=128)
    p.add_argument("--ef-construction", type=int, default=80)
    p.add_argument("--pca-dim", type=int, default=128)
    p.add_argument("--refine", type=float, default=1.5)
    p.add_argument("--recall-queries", type=int, default=1000)
    p.add_argument("--worker", type=int, default=0, help=argparse.SUPPRESS)
    p.add_argument("--mode", default="approx", help=argparse.SUPPRESS)
    p.add_argument("--out", default="", help=argparse.SUPPRESS)
    p.add_argument("--file", default="", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.worker:
        worker(args)
        return 0
    import torch

    cpu = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo")
                if line.startswith("model name")), platform.processor())
    print(f"# {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC, {cpu}, "
          f"{os.cpu_count()} CPUs, torch {torch.__version__}, dim={args.dim} k1={args.k1} k2={args.k2} "
          f"eps={args.eps} max_dist={args.max_dist} per_cluster={args.per_cluster} "
          f"on_disk={args.on_disk}", flush=True)
    rows = []
    with tempfile.TemporaryDirectory(dir=args.tmp) as tmp:
        for n in args.sizes:
            file = ""
            if args.on_disk:
                file = os.path.join(tmp, f"features_{n}.f32")
                t0 = time.perf_counter()
                _write_features(args, n, file)
                print(f"# N={n}: features written to disk in {time.perf_counter() - t0:.0f} s", flush=True)
            a = _run(args, n, "approx", os.path.join(tmp, f"approx_{n}.npy"), file)
            e = _run(args, n, "exact", os.path.join(tmp, f"exact_{n}.npy"), file) \
                if n <= args.exact_max else None
            s = _run(args, n, "sample", "", file)
            ari = None
            if e is not None:
                ari = _ari(np.load(os.path.join(tmp, f"approx_{n}.npy")),
                           np.load(os.path.join(tmp, f"exact_{n}.npy")))
            ref = e["total_s"] if e is not None else s["knn_s"]
            new = [[n, f"approx {a['params']}", a["knn_s"], a["cluster_s"], a["total_s"],
                    f"{ref / a['total_s']:.1f}x" + ("" if e is not None else " est."), a["peak_mb"],
                    a["anon_mb"], f"{a['recall']:.3f}", None, None if ari is None else f"{ari:.3f}",
                    a["clusters"], f"{100 * a['outliers']:.1f}",
                    "s: " + ", ".join(f"{k} {v:.0f}" for k, v in a["phases"].items())]]
            if e is not None:
                new.append([n, f"exact ({args.exact_backend})", e["knn_s"], e["cluster_s"], e["total_s"],
                            None, e["peak_mb"], e["anon_mb"], None, None, None, e["clusters"],
                            f"{100 * e['outliers']:.1f}", ""])
            new.append([n, "exact kNN est.", s["knn_s"], None, None, None, s["peak_mb"], s["anon_mb"], None,
                        f"{s['in_cluster']:.3f}", None, None, None,
                        f"{s['rows']} rows in {s['sample_s']:.0f} s, x N / rows / 2"])
            for r in new:
                print(_table([r]).splitlines()[-1], flush=True)
            rows += new
            for f in (file, file + ".labels.npy"):
                if f and os.path.exists(f):
                    os.remove(f)
    with open("/proc/loadavg") as f:
        load = " ".join(f.read().split()[:3])
    print(f"\nload average at the end: {load}")
    print(_table(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
