"""Benchmark the rank evaluator: compiled (``rank_cy``) vs NumPy, time and peak memory.

Every (case, implementation) pair runs in its own subprocess so that peak RSS is measured
in isolation. Inputs are synthetic and reproducible (fixed seeds):

* ``market``: precomputed float32 distmat, 3,368 x 15,913, 751 ids (+ 2,798 distractors with
  pid 0), 6 cameras, identity-structured features (realistic rank distribution).
* ``market-random``: same sizes, i.i.d. uniform distances (worst case: positives everywhere).
* ``msmt17``: 11,659 x 82,161 from 2048-d features, 3,060 ids, 15 cameras, through
  ``evaluate_features`` (query chunks; the full distmat is never built). ``dist-only`` times
  the chunked distance computation alone.
* ``market-rerank`` (``--rerank``): k-reciprocal re-ranking (k1=20, k2=6, lambda=0.3) of the
  Market test size from L2-normalised 2048-d features: ``ReRankedDistance`` (kNN with row
  maxima over the 19,281 query+gallery items, sparse Jaccard of the query rows) then
  ``evaluate_features`` with it as ``dist_fn``. The time includes everything after feature
  generation; ``--rerank`` alone runs only this case.

"ranking s" is the time spent ranking distance chunks (distance computation excluded).
"input RSS" is the RSS just before the timed runs (inputs + imports: importing
``unreidusl.evaluation`` currently pulls in torch, ~0.7 GB), "peak RSS" the process maximum.

Usage: ``python benchmarks/bench_rank.py [--cases market,market-random,msmt17] [--repeat 3]
[--rerank]``
"""
import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time

import numpy as np

CASES = {
    "market": dict(nq=3368, ng=15913, ids=751, distractors=2798, cams=6, dim=64, noise=1.1),
    "market-random": dict(nq=3368, ng=15913, ids=751, distractors=2798, cams=6, dim=0, noise=0),
    "msmt17": dict(nq=11659, ng=82161, ids=3060, distractors=0, cams=15, dim=2048, noise=3.0),
    "market-rerank": dict(nq=3368, ng=15913, ids=751, distractors=2798, cams=6, dim=2048,
                          noise=4.0),
}


def _rss_mb(field):
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # Linux: KiB


def make_ids(cfg, rng):
    """Query/gallery pids and cameras; distractors (pid 0) are gallery-only negatives."""
    n_real = cfg["ng"] - cfg["distractors"]
    g_pids = np.concatenate([rng.integers(1, cfg["ids"] + 1, n_real),
                             np.zeros(cfg["distractors"], np.int64)])
    q_pids = rng.integers(1, cfg["ids"] + 1, cfg["nq"])
    q_cams = rng.integers(0, cfg["cams"], cfg["nq"])
    return q_pids, g_pids, q_cams, rng.integers(0, cfg["cams"], cfg["ng"])


def make_features(pids, centers, noise, rng, block=4096):
    """center[pid] + noise, filled block-wise (no full-size temporaries)."""
    out = np.empty((pids.shape[0], centers.shape[1]), np.float32)
    for s in range(0, pids.shape[0], block):
        p = pids[s:s + block]
        out[s:s + block] = centers[p] + noise * rng.standard_normal((p.shape[0], centers.shape[1]),
                                                                      dtype=np.float32)
    return out


def worker(case, impl, repeat):
    from unreidusl.evaluation import rank

    cfg = CASES[case]
    rng = np.random.default_rng(0)
    q_pids, g_pids, q_cams, g_cams = make_ids(cfg, rng)
    if cfg["dim"]:
        centers = rng.standard_normal((cfg["ids"] + 1, cfg["dim"]), dtype=np.float32)
        qf = make_features(q_pids, centers, cfg["noise"], rng)
        gf = make_features(g_pids, centers, cfg["noise"], rng)
    use_cython = impl == "cython"
    if use_cython and not rank.compiled_available():
        return {"error": "rank_cy not built (pip install -e .)"}
    phases = {}
    if case == "market-rerank":
        run = _rerank_runner(rank, qf, gf, q_pids, g_pids, q_cams, g_cams, use_cython, phases)
    elif case.startswith("market"):
        if cfg["dim"]:
            dist = (qf * qf).sum(1)[:, None] + (gf * gf).sum(1)[None] - 2 * qf @ gf.T
            dist = np.maximum(dist, 0, out=dist).astype(np.float32, copy=False)
            del qf, gf
        else:
            dist = rng.random((cfg["nq"], cfg["ng"]), dtype=np.float32)

        def run():
            return rank.evaluate_rank(dist, q_pids, g_pids, q_cams, g_cams, 50, use_cython)
    elif impl == "dist-only":
        def run():
            for _ in rank._feature_chunks(qf, gf, "euclidean", 204):
                pass
            return None
    else:
        def run():
            return rank.evaluate_features(qf, gf, q_pids, g_pids, q_cams, g_cams, 50,
                                          use_cython=use_cython)
    rank_time = [0.0]  # time spent ranking (inside _RankAccumulator.add), distances excluded
    add = rank._RankAccumulator.add

    def timed_add(self, *a):
        t0 = time.perf_counter()
        add(self, *a)
        rank_time[0] += time.perf_counter() - t0

    rank._RankAccumulator.add = timed_add
    rss_in = _rss_mb("VmRSS")
    times, res = [], None
    for _ in range(repeat):
        t0 = time.perf_counter()
        res = run()
        times.append(time.perf_counter() - t0)
    out = {"times": times, "rss_in": rss_in, "peak": _rss_mb("VmHWM"),
           "rank_s": rank_time[0] / repeat}
    if res is not None:
        out.update(mAP=res["mAP"], r1=float(res["cmc"][0]), mINP=res["mINP"], impl=res["impl"])
    if phases:
        out["phases"] = {k: v / repeat for k, v in phases.items()}
    return out


def _rerank_runner(rank, qf, gf, q_pids, g_pids, q_cams, g_cams, use_cython, phases):
    """Re-ranked evaluation; ``phases`` accumulates kNN / Jaccard / total-prepare seconds."""
    from unreidusl.evaluation import rerank
    from unreidusl.evaluation.chunked_distance import ChunkedDistance

    for arr in (qf, gf):
        arr /= np.linalg.norm(arr, axis=1, keepdims=True)
    for name in ("knn_search", "jaccard_distance"):
        fn = getattr(rerank, name)

        def timed(*a, _fn=fn, _name=name, **kw):
            t0 = time.perf_counter()
            try:
                return _fn(*a, **kw)
            finally:
                phases[_name] = phases.get(_name, 0.0) + time.perf_counter() - t0

        setattr(rerank, name, timed)

    def run():
        t0 = time.perf_counter()
        rr = rerank.ReRankedDistance(qf, gf, 20, 6, 0.3)
        phases["prepare"] = phases.get("prepare", 0.0) + time.perf_counter() - t0
        return rank.evaluate_features(qf, gf, q_pids, g_pids, q_cams, g_cams, 50,
                                      dist_fn=ChunkedDistance(qf, gf, base=rr),
                                      use_cython=use_cython)
    return run


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cases", default=None,
                    help="comma-separated (default market,market-random,msmt17)")
    ap.add_argument("--rerank", action="store_true",
                    help="add the market-rerank case (only it when --cases is not given)")
    ap.add_argument("--repeat", type=int, default=3, help="timed runs per Market case")
    ap.add_argument("--worker", nargs=2, metavar=("CASE", "IMPL"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        print("RESULT " + json.dumps(worker(*args.worker, args.repeat)))
        return
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    path = os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")]))
    env = dict(os.environ, PYTHONPATH=path)
    rows, header = [], ["case", "impl", "Q x G", "time s (min / median)", "ranking s (mean)",
                        "input RSS MB", "peak RSS MB", "mAP", "R1", "mINP"]
    cases = (args.cases or ("" if args.rerank else "market,market-random,msmt17")).split(",")
    cases = [c for c in cases if c] + (["market-rerank"] if args.rerank else [])
    breakdown = []
    for case in dict.fromkeys(cases):
        impls = ["cython", "numpy"] + (["dist-only"] if case == "msmt17" else [])
        impls = ["cython"] if case == "market-rerank" else impls
        repeat = 1 if case in ("msmt17", "market-rerank") else args.repeat
        for impl in impls:
            cmd = [sys.executable, os.path.abspath(__file__), "--repeat", str(repeat),
                   "--worker", case, impl]
            proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
            line = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
            r = json.loads(line[-1][7:]) if line else {"error": proc.stderr.strip()[-300:]}
            size = f"{CASES[case]['nq']:,} x {CASES[case]['ng']:,}"
            if "error" in r:
                rows.append([case, impl, size, "error: " + r["error"]] + [""] * 6)
                continue
            t = f"{min(r['times']):.3f} / {statistics.median(r['times']):.3f}"
            metrics = [f"{r[k]:.4f}" if k in r else "" for k in ("mAP", "r1", "mINP")]
            rank_s = f"{r['rank_s']:.3f}" if "mAP" in r else ""
            rows.append([case, r.get("impl", impl), size, t, rank_s, f"{r['rss_in']:.0f}",
                         f"{r['peak']:.0f}"] + metrics)
            print(" | ".join(map(str, rows[-1])), file=sys.stderr, flush=True)
            if "phases" in r:
                ph = r["phases"]
                breakdown.append(f"{case}: kNN + row max {ph['knn_search']:.2f} s, sparse "
                                 f"Jaccard {ph['jaccard_distance']:.2f} s, prepare total "
                                 f"{ph['prepare']:.2f} s, re-ranked distances + ranking "
                                 f"{min(r['times']) - ph['prepare']:.2f} s")
    try:
        from tabulate import tabulate
        print(tabulate(rows, headers=header, tablefmt="github"))
    except ImportError:
        print(" | ".join(header))
        for row in rows:
            print(" | ".join(map(str, row)))
    for line in breakdown:
        print(line)
    print(f"\ncpus={os.cpu_count()} numpy={np.__version__} load={os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
