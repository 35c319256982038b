"""Benchmark: ICDBSCAN on the sparse Jaccard distance with ~20 cannot-link partners per point.

    python benchmarks/bench_icdbscan.py --sizes 2196 10517 --reference-sizes 400 800 1600 2196

Problem: clustered unit features (``bench_cluster.make_features``, N / 16 centres), their sparse
k-reciprocal Jaccard distance (k1 = 30, k2 = 6; stored = D < 1, unstored = 1), and symmetric
cannot-links: every point draws ``--partners / 2`` partners (a quarter of them among its stored
Jaccard neighbours, so the constraints bite, the rest uniformly), then the relation is made
symmetric, so a point has about ``--partners`` of them.  eps = ``--eps`` (0.6, AuxUSLReID's
CLUSTER.EPS), min_samples = 4, RELAXED 0.0 and -1.0.

Every measurement runs in its own subprocess that imports ``unreidusl/cluster/icdbscan.py`` alone
(numpy + scipy, no torch), so ``peak`` (``VmHWM``) is the whole process and ``peak-base`` what
the call added on top of the loaded problem.  ``fast`` = ``icdbscan`` (compiled loop when built),
``python`` = the same algorithm with its Python loop, ``set-order`` = ``icdbscan(order="reference")``
(AuxUSLReID's released algorithm: Python set order, constraints growing in place; its labels are
compared with ``fast`` by the adjusted Rand index), ``reference`` = ``icdbscan_reference``
(straightforward pure Python with dense D and sets, O(N^2)); the reference runs on problems of
the ``--reference-sizes`` (generated the same way), its labels are compared with ``fast`` there, and
its time is extrapolated to the large sizes with the power law ``t = a N^b`` fitted (least
squares in log-log) to the reference sizes, and so is its ``peak - base`` (its dense N x N
float64 copy alone is 8 N^2 bytes; the Python neighbour sets dominate).
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
sys.path.insert(0, ROOT)


def _peak_mb():
    """High-water RSS of this process image (VmHWM; ``ru_maxrss`` would include the RSS of the
    forking parent, which Linux carries across exec)."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM"):
                return int(line.split()[1]) / 1024.0
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def make_problem(n, dim, partners, seed, path):
    """Jaccard distance + cannot-links, saved to ``path`` (.npz)."""
    import scipy.sparse as sp

    sys.path.insert(0, os.path.join(ROOT, "benchmarks"))
    from bench_cluster import make_features
    from unreidusl.cluster.jaccard import jaccard_distance

    x, _ = make_features(n, dim, seed=seed)
    t = time.perf_counter()
    d = jaccard_distance(x, k1=30, k2=6, knn_backend="torch")
    t_jac = time.perf_counter() - t
    rng = np.random.default_rng(seed + 1)
    half = max(1, partners // 2)
    near_k = max(1, half // 4)
    rows, cols = [], []
    deg = np.diff(d.indptr)
    pick = (rng.random((n, near_k)) * np.maximum(deg, 1)[:, None]).astype(np.int64)
    near = d.indices[np.minimum(d.indptr[:-1, None] + pick, d.indptr[1:, None] - 1)]
    rows.append(np.repeat(np.arange(n), near_k))
    cols.append(near.ravel())
    rows.append(np.repeat(np.arange(n), half - near_k))
    cols.append(rng.integers(0, n, n * (half - near_k)))
    r, c = np.concatenate(rows), np.concatenate(cols)
    keep = r != c
    cl = sp.csr_matrix((np.ones(keep.sum(), bool), (r[keep], c[keep])), shape=(n, n))
    cl = (cl + cl.T).tocsr()
    cl.sum_duplicates()
    np.savez(path, d_data=d.data, d_indices=d.indices, d_indptr=d.indptr, cl_indices=cl.indices,
             cl_indptr=cl.indptr, n=n)
    return {"n": n, "jaccard_s": t_jac, "nnz_per_row": d.nnz / n, "partners": cl.nnz / n}


def _load(path, size=None):
    import scipy.sparse as sp

    z = np.load(path)
    n = int(z["n"])
    d = sp.csr_matrix((z["d_data"], z["d_indices"], z["d_indptr"]), shape=(n, n))
    cl = sp.csr_matrix((np.ones(z["cl_indices"].shape[0], bool), z["cl_indices"], z["cl_indptr"]),
                       shape=(n, n))
    if size is not None and size < n:
        d, cl = d[:size][:, :size].tocsr(), cl[:size][:, :size].tocsr()
    return d, cl


def _import_icdbscan():
    """``unreidusl/cluster/icdbscan.py`` without the package ``__init__`` (which imports torch)."""
    import types

    import unreidusl  # noqa: F401  (tiny)
    pkg = types.ModuleType("unreidusl.cluster")
    pkg.__path__ = [os.path.join(ROOT, "unreidusl", "cluster")]
    sys.modules["unreidusl.cluster"] = pkg
    import unreidusl.cluster.icdbscan as icd
    return icd


def run_case(path, kind, relaxed, eps, size, repeats, labels_out):
    icd = _import_icdbscan()
    d, cl = _load(path, size)
    base = _peak_mb()
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        if kind == "reference":
            labels = icd.icdbscan_reference(d, eps, 4, cl, relaxed)
        elif kind == "set-order":
            labels = icd.icdbscan(d, eps, 4, cl, relaxed, order="reference")
        else:
            labels = icd.icdbscan(d, eps, 4, cl, relaxed, use_compiled=(kind == "fast"))
        times.append(time.perf_counter() - t)
    if labels_out:
        np.save(labels_out, labels)
    return {"kind": kind, "n": d.shape[0], "relaxed": relaxed, "seconds": min(times),
            "median_s": float(np.median(times)), "base_mb": base, "peak_mb": _peak_mb(),
            "compiled": icd.compiled_available(), "clusters": int(labels.max() + 1),
            "outliers": float((labels < 0).mean())}


def sub(args_list):
    out = subprocess.run([sys.executable, os.path.abspath(__file__), "--case"] + args_list,
                         capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sizes", type=int, nargs="+", default=[2196, 10517])
    p.add_argument("--reference-sizes", type=int, nargs="+", default=[400, 800, 1600, 2196])
    p.add_argument("--dim", type=int, default=2048,
                   help="feature dimension (256 gives far denser Jaccard rows: a memory stress case)")
    p.add_argument("--partners", type=int, default=20)
    p.add_argument("--eps", type=float, default=0.6)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", default="")
    p.add_argument("--case", nargs="*", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.case is not None:
        path, kind, relaxed, size, repeats, labels_out = args.case
        print(json.dumps(run_case(path, kind, float(relaxed), args.eps, int(size) or None,
                                  int(repeats), labels_out)))
        return
    results, problems = [], []
    with tempfile.TemporaryDirectory() as tmp:
        paths = {}

        def problem(n):
            if n not in paths:
                paths[n] = os.path.join(tmp, f"p{n}.npz")
                info = make_problem(n, args.dim, args.partners, args.seed, paths[n])
                problems.append(info)
                print(f"N={n}: Jaccard {info['jaccard_s']:.1f}s, {info['nnz_per_row']:.1f} stored/row, "
                      f"{info['partners']:.1f} cannot-link partners/point", flush=True)
            return paths[n]

        for n in args.sizes:
            for relaxed in (0.0, -1.0):
                for kind in ("fast", "python", "set-order"):
                    out = os.path.join(tmp, f"{kind}.npy")
                    r = sub([problem(n), kind, str(relaxed), "0", str(args.repeats), out])
                    if kind == "set-order":
                        from sklearn.metrics import adjusted_rand_score
                        r["ari_vs_fast"] = float(adjusted_rand_score(
                            np.load(os.path.join(tmp, "fast.npy")), np.load(out)))
                    results.append(r)
                    print(json.dumps(r), flush=True)
        for relaxed in (0.0, -1.0):
            fits = []
            for m in args.reference_sizes:
                ref_l, fast_l = os.path.join(tmp, "ref.npy"), os.path.join(tmp, "fast.npy")
                r = sub([problem(m), "reference", str(relaxed), "0", "2", ref_l])
                sub([problem(m), "fast", str(relaxed), "0", "1", fast_l])
                r["identical_to_fast"] = bool(np.array_equal(np.load(ref_l), np.load(fast_l)))
                results.append(r)
                fits.append((m, r["seconds"], max(r["peak_mb"] - r["base_mb"], 1e-3)))
                print(json.dumps(r), flush=True)
            logn, logt = np.log([f[0] for f in fits]), np.log([f[1] for f in fits])
            b, a = np.polyfit(logn, logt, 1)                 # t = exp(a) * N^b, least squares
            bm, am = np.polyfit(logn, np.log([f[2] for f in fits]), 1)   # same for peak - base
            for n in args.sizes:
                if n in args.reference_sizes:
                    continue
                results.append({"kind": "reference (extrapolated)", "n": n, "relaxed": relaxed,
                                "seconds": float(np.exp(a) * n ** b), "exponent": float(b),
                                "added_mb": float(np.exp(am) * n ** bm), "mem_exponent": float(bm)})
    print("\n| N | RELAXED | implementation | time | peak RSS (MB) | peak - base (MB) | clusters | labels |")
    print("|---|---|---|---|---|---|---|---|")
    for r in results:
        same = {True: "= fast", False: "DIFFER"}.get(r.get("identical_to_fast"), "")
        if "ari_vs_fast" in r:
            same = f"ARI {r['ari_vs_fast']:.2f} vs fast"
        peak = f"{r['peak_mb']:.0f}" if "peak_mb" in r else ""
        extra = (f"{r['peak_mb'] - r['base_mb']:.0f}" if "peak_mb" in r else
                 f"~{r['added_mb']:.0f} (N^{r['mem_exponent']:.2f})")
        t = f"{r['seconds'] * 1000:.0f} ms" if r["seconds"] < 10 else f"{r['seconds']:.0f} s"
        print(f"| {r['n']} | {r['relaxed']} | {r['kind']} | {t} | {peak} | {extra} | "
              f"{r.get('clusters', '')} | {same} |")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"problems": problems, "results": results}, f, indent=1)


if __name__ == "__main__":
    main()
