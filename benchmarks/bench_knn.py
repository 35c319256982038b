"""Benchmark: the exact kNN backends (torch, faiss, numpy) of ``unreidusl.cluster.knn.knn_search``.

    python benchmarks/bench_knn.py --sizes 2000 12000 --dims 2048 512 --k 31 --repeat 3

A self-search (what the clustering does: every training feature against all of them) of clustered
unit vectors (``bench_cluster.make_features``), k neighbours per row, for every backend that is
installed. Each (backend, N, d) case runs ``--repeat`` times in one subprocess after one untimed
warm-up call; the table gives the best wall-clock time, the process CPU time of that run and
how its neighbour lists compare with the torch backend's: ``same sets`` (every row holds the same
k neighbours), ``rows reordered`` (rows whose order differs, i.e. two neighbours at distances equal
up to float32 rounding swapped) and the largest difference of the returned squared distances
(``max |dd|``). ``auto`` names the backend ``backend="auto"`` picks for the case on this machine
(``knn.auto_backend``). ``--json FILE`` also writes the rows as JSON.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "benchmarks"))
sys.path.insert(0, ROOT)

from bench_cluster import make_features  # noqa: E402


def worker(args) -> None:
    import torch  # noqa: F401  (import cost outside the timing)

    from unreidusl.cluster.knn import knn_search

    x, _ = make_features(args.n, args.dim, seed=0)
    knn_search(x[:256], k=min(args.k, 256), backend=args.backend)          # warm-up (imports, BLAS)
    best, cpu, out = float("inf"), 0.0, None
    for _ in range(args.repeat):
        c0, t0 = time.process_time(), time.perf_counter()
        out = knn_search(x, k=args.k, backend=args.backend)
        t = time.perf_counter() - t0
        if t < best:
            best, cpu = t, time.process_time() - c0
    np.save(args.out + ".d.npy", out[0])
    np.save(args.out + ".i.npy", out[1])
    with open(args.out + ".json", "w") as f:
        json.dump({"seconds": best, "cpu_seconds": cpu}, f)


def run_case(backend, n, dim, k, repeat, tmp):
    out = os.path.join(tmp, f"{backend}-{n}-{dim}")
    cmd = [sys.executable, os.path.abspath(__file__), "--worker", "--backend", backend, "--n", str(n),
           "--dim", str(dim), "--k", str(k), "--repeat", str(repeat), "--out", out]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"{backend} N={n} d={dim} failed:\n{proc.stderr[-2000:]}")
    with open(out + ".json") as f:
        res = json.load(f)
    return res, np.load(out + ".d.npy"), np.load(out + ".i.npy")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sizes", type=int, nargs="+", default=[2000, 12000])
    p.add_argument("--dims", type=int, nargs="+", default=[2048, 512])
    p.add_argument("--k", type=int, default=31, help="neighbours per row (Jaccard k1 30 + 1)")
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--backends", nargs="+", default=["torch", "faiss", "numpy"])
    p.add_argument("--json", default="", help="also write the rows to this JSON file")
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--backend", default="torch", help=argparse.SUPPRESS)
    p.add_argument("--n", type=int, default=0, help=argparse.SUPPRESS)
    p.add_argument("--dim", type=int, default=0, help=argparse.SUPPRESS)
    p.add_argument("--out", default="", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.worker:
        worker(args)
        return 0
    import torch

    from unreidusl.cluster.knn import auto_backend, faiss_available

    backends = [b for b in args.backends if b != "faiss" or faiss_available()]
    print(f"# {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, torch "
          f"{torch.__version__} ({torch.get_num_threads()} threads), numpy {np.__version__}"
          + (", faiss " + __import__("faiss").__version__ if faiss_available() else ", no faiss"))
    print("| N | d | backend | seconds | CPU s | same sets as torch | rows reordered | max abs dd | auto |")
    print("|---|---|---|---|---|---|---|---|---|")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for n in args.sizes:
            for dim in args.dims:
                ref = None
                for backend in backends:
                    res, d, i = run_case(backend, n, dim, args.k, args.repeat, tmp)
                    if ref is None:
                        ref = (d, i)
                    sets = bool(np.array_equal(np.sort(i, 1), np.sort(ref[1], 1)))
                    reordered = int((i != ref[1]).any(1).sum())
                    diff = float(np.abs(d - ref[0]).max())
                    auto = auto_backend("cpu", n, dim, self_search=True)
                    rows.append({"n": n, "dim": dim, "backend": backend, **res, "same_sets": sets,
                                 "rows_reordered": reordered, "max_abs_dd": diff, "auto": auto})
                    print(f"| {n} | {dim} | {backend} | {res['seconds']:.3f} | {res['cpu_seconds']:.2f} | "
                          f"{'yes' if sets else 'no'} | {reordered} | {diff:.2e} | "
                          f"{'<-' if auto == backend else ''} |", flush=True)
    with open("/proc/loadavg") if os.path.exists("/proc/loadavg") else open(os.devnull) as f:
        load = f.read().split()[:3]
    print(f"\nload average at the end: {' '.join(load) or 'n/a'}"
          + (f"; on CUDA auto picks {auto_backend('cuda')}" if torch.cuda.is_available() else ""))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
