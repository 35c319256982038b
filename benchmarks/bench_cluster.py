"""Benchmark: exact kNN + sparse k-reciprocal Jaccard distance + sparse DBSCAN.

    python benchmarks/bench_cluster.py --sizes 2000 12936 32621 --dim 2048 --reference-max 4000

Every case runs in its own subprocess so that its peak RSS (``ru_maxrss``) is its own.  Features are
reproducible clustered unit vectors: a mixture of isotropic Gaussians around ``N / 16`` random unit
centres, ``x = normalise(c + sigma * g / sqrt(d))`` (``sigma = 1`` puts the within-cluster cosine
near 0.5).  ``product s`` is the time of the exact kNN's matrix products alone (the tiles on and
above the block diagonal, measured first in the same process), ``total/product`` the whole
kNN + Jaccard + DBSCAN against it.  ``base`` is the RSS once the imports are done and the features exist (the torch backend imports
torch, about 0.5 GB of RSS by itself; the numpy backend does not); ``peak`` is the process high-water mark;
``peak-base`` is what the algorithm added, ``D MB`` the size of the returned CSR matrix.  Times are
wall-clock; ``CPU s`` is the process CPU time (user+system, all threads), a check on machines that
other work is loading.  The dense reference
(``jaccard_distance_dense_reference``, the original algorithm with dense N x N arrays and Python
loops) runs for N <= --reference-max, is fed the same kNN ranking, and is compared entry-wise.
With ``--hdc`` every size also gets an ``HDC`` row: 3C's Harmonic Discrepancy Clustering
(``unreidusl.cluster.hdc``, K = N / 16, default options) on the sparse Jaccard distance of that row
(``Jaccard s`` column: seconds of HDC itself; ``check``: iterations and ARI against the mixture).
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def make_features(n, dim, seed=0, per_cluster=16, sigma=1.0, chunk=4096, out=None):
    """Clustered unit-norm float32 features, generated chunk-wise (no float64 N x d array); ``out``:
    an ``[n, dim]`` float32 array to fill (e.g. a ``numpy.memmap``) instead of a new one."""
    rng = np.random.default_rng(seed)
    n_centres = max(1, n // per_cluster)
    centres = rng.standard_normal((n_centres, dim), dtype=np.float32)
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    labels = rng.integers(0, n_centres, n)
    x = np.empty((n, dim), np.float32) if out is None else out
    for s in range(0, n, chunk):
        e = min(n, s + chunk)
        x[s:e] = rng.standard_normal((e - s, dim), dtype=np.float32)
        x[s:e] *= sigma / np.sqrt(dim)
        x[s:e] += centres[labels[s:e]]
        x[s:e] /= np.linalg.norm(x[s:e], axis=1, keepdims=True)
    return x, labels


def _rss_mb():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS"):
                return int(line.split()[1]) / 1024.0
    return float("nan")


def _peak_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _product_time(x, backend, block=4096):
    """Seconds of the matrix products alone of the exact self-search: the tiles on and above the
    block diagonal that the blocked torch / numpy backends multiply (faiss multiplies all of them)."""
    n = x.shape[0]
    if backend == "numpy":
        mm = np.dot
    else:
        import torch
        x = torch.from_numpy(x)
        mm = torch.mm
    t0 = time.perf_counter()
    for i in range(0, n, block):
        for j in range(0 if backend == "faiss" else i, n, block):
            mm(x[i:i + block], x[j:j + block].T)
    return time.perf_counter() - t0


def worker(args):
    sys.path.insert(0, ROOT)
    if args.backend in ("torch", "auto"):
        import torch  # noqa: F401  (import cost belongs to the baseline)
    from unreidusl.cluster.dbscan import dbscan_sparse
    from unreidusl.cluster.jaccard import jaccard_distance, jaccard_distance_dense_reference
    from unreidusl.cluster.knn import knn_search

    x, truth = make_features(args.worker, args.dim, args.seed, sigma=args.sigma)
    res = {"n": args.worker, "mode": args.mode}
    if args.mode == "sparse":
        res["base_mb"] = _rss_mb()
        res["product_s"] = _product_time(x, args.backend)
        c0, t0 = time.process_time(), time.perf_counter()
        d2, idx = knn_search(x, k=args.k1, backend=args.backend)
        t1 = time.perf_counter()
        dist = jaccard_distance(x, args.k1, args.k2, knn=(d2, idx), max_dist=args.max_dist)
        t2 = time.perf_counter()
        labels = dbscan_sparse(dist, args.eps, 4)
        t3 = time.perf_counter()
        res.update(knn_s=t1 - t0, jaccard_s=t2 - t1, dbscan_s=t3 - t2, total_s=t3 - t0,
                   cpu_s=time.process_time() - c0, nnz_per_row=dist.nnz / args.worker,
                   dist_mb=(dist.data.nbytes + dist.indices.nbytes + dist.indptr.nbytes) / 2**20,
                   clusters=int(labels.max() + 1), noise=float((labels == -1).mean()),
                   peak_mb=_peak_mb())
        if args.save:
            np.save(args.save + "_idx.npy", idx)
            np.save(args.save + "_labels.npy", labels)
            import scipy.sparse as sp
            sp.save_npz(args.save + "_dist.npz", dist)
    elif args.mode == "hdc":
        import scipy.sparse as sp
        import torch
        from sklearn.metrics import adjusted_rand_score
        from unreidusl.cluster.hdc import hdc
        dist = sp.load_npz(args.save + "_dist.npz").tocsr()
        res["base_mb"] = _rss_mb()
        c0, t0 = time.process_time(), time.perf_counter()
        out = hdc(x, dist, max(2, args.worker // 16), generator=torch.Generator().manual_seed(args.seed))
        res.update(total_s=time.perf_counter() - t0, cpu_s=time.process_time() - c0, peak_mb=_peak_mb(),
                   iterations=out.iterations, ari=float(adjusted_rand_score(truth, out.labels)))
    else:  # dense reference, fed the same kNN ranking as the sparse run
        import scipy.sparse as sp
        from sklearn.cluster import DBSCAN
        idx = np.load(args.save + "_idx.npy")
        res["base_mb"] = _rss_mb()
        c0, t0 = time.process_time(), time.perf_counter()
        ref = jaccard_distance_dense_reference(x, args.k1, args.k2, rank=idx)
        t1 = time.perf_counter()
        labels = DBSCAN(eps=args.eps, min_samples=4, metric="precomputed",
                        n_jobs=-1).fit_predict(ref)
        t2 = time.perf_counter()
        res.update(jaccard_s=t1 - t0, dbscan_s=t2 - t1, total_s=t2 - t0,
                   cpu_s=time.process_time() - c0, peak_mb=_peak_mb())
        sparse = sp.load_npz(args.save + "_dist.npz").tocsr()
        n = sparse.shape[0]
        dense = np.ones((n, n), np.float32)
        rows = np.repeat(np.arange(n), np.diff(sparse.indptr))
        dense[rows, sparse.indices] = sparse.data
        res["max_abs_diff"] = float(np.abs(dense - ref).max())
        res["labels_equal"] = bool((labels == np.load(args.save + "_labels.npy")).all())
    print("RESULT " + json.dumps(res), flush=True)


def run_case(args, n, mode, save):
    cmd = [sys.executable, os.path.abspath(__file__), "--worker", str(n), "--mode", mode,
           "--dim", str(args.dim), "--k1", str(args.k1), "--k2", str(args.k2),
           "--eps", str(args.eps),
           "--seed", str(args.seed), "--sigma", str(args.sigma), "--backend", args.backend,
           "--save", save]
    if args.max_dist is not None:
        cmd += ["--max-dist", str(args.max_dist)]
    out = subprocess.run(cmd, capture_output=True, text=True)
    for line in out.stdout.splitlines():
        if line.startswith("RESULT "):
            return json.loads(line[7:])
    raise RuntimeError(f"worker failed (n={n}, {mode}):\n{out.stdout}\n{out.stderr}")


def _table(rows, headers):
    try:
        from tabulate import tabulate
        return tabulate(rows, headers=headers, tablefmt="github", floatfmt=".2f", missingval="-")
    except ImportError:
        cells = [[f"{c:.2f}" if isinstance(c, float) else ("-" if c is None else str(c)) for c in r]
                 for r in rows]
        widths = [max(len(h), *(len(r[i]) for r in cells)) for i, h in enumerate(headers)]
        lines = [" | ".join(h.rjust(w) for h, w in zip(headers, widths))]
        lines += [" | ".join(c.rjust(w) for c, w in zip(r, widths)) for r in cells]
        return "\n".join(lines)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--sizes", type=int, nargs="+", default=[2000, 12936, 32621])
    p.add_argument("--dim", type=int, default=2048)
    p.add_argument("--reference-max", type=int, default=4000)
    p.add_argument("--k1", type=int, default=30)
    p.add_argument("--k2", type=int, default=6)
    p.add_argument("--eps", type=float, default=0.6)
    p.add_argument("--sigma", type=float, default=1.0)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--backend", default="torch", choices=["torch", "numpy", "faiss", "auto"])
    p.add_argument("--max-dist", type=float, default=None,
                   help="pass max_dist to jaccard_distance (store only D <= max_dist)")
    p.add_argument("--hdc", action="store_true", help="add an HDC row per size (3C, K = N / 16)")
    p.add_argument("--worker", type=int, default=0, help=argparse.SUPPRESS)
    p.add_argument("--mode", default="sparse", help=argparse.SUPPRESS)
    p.add_argument("--save", default="", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.worker:
        return worker(args)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for n in args.sizes:
            save = os.path.join(tmp, f"n{n}")
            r = run_case(args, n, "sparse", save)
            rows.append([n, "sparse", r["product_s"], r["knn_s"], r["jaccard_s"], r["dbscan_s"],
                         r["total_s"], r["total_s"] / r["product_s"],
                         r["cpu_s"], r["base_mb"], r["peak_mb"], r["peak_mb"] - r["base_mb"],
                         r["dist_mb"], f"{r['nnz_per_row']:.0f}", r["clusters"], ""])
            print(_table([rows[-1]], HEADERS).splitlines()[-1], flush=True)
            if args.hdc:
                h = run_case(args, n, "hdc", save)
                rows.append([n, "HDC", None, None, h["total_s"], None, h["total_s"], None, h["cpu_s"],
                             h["base_mb"],
                             h["peak_mb"], h["peak_mb"] - h["base_mb"], None, None, max(2, n // 16),
                             f"iters={h['iterations']} ARI={h['ari']:.3f}"])
                print(_table([rows[-1]], HEADERS).splitlines()[-1], flush=True)
            if n <= args.reference_max:
                d = run_case(args, n, "dense", save)
                check = f"maxdiff={d['max_abs_diff']:.1e} labels_equal={d['labels_equal']}"
                rows.append([n, "dense ref", None, None, d["jaccard_s"], d["dbscan_s"], d["total_s"],
                             None, d["cpu_s"], d["base_mb"], d["peak_mb"], d["peak_mb"] - d["base_mb"],
                             None, None, None, check])
                print(_table([rows[-1]], HEADERS).splitlines()[-1], flush=True)
    print()
    print(f"dim={args.dim} k1={args.k1} k2={args.k2} eps={args.eps} sigma={args.sigma} "
          f"backend={args.backend} max_dist={args.max_dist} cpus={os.cpu_count()} "
          f"load={os.getloadavg()[0]:.1f}")
    print(_table(rows, HEADERS))


HEADERS = ["N", "impl", "product s", "kNN s", "Jaccard s", "DBSCAN s", "total s", "total/product",
           "CPU s", "base MB", "peak MB",
           "peak-base MB", "D MB", "nnz/row", "clusters", "check"]

if __name__ == "__main__":
    main()
