"""Benchmark: every method's whole pseudo-label step and one training step at real dataset sizes.

    python benchmarks/bench_pseudo_label.py --sizes 12936 32621         # Market-1501, MSMT17 train
    python benchmarks/bench_pseudo_label.py --sizes 500 --methods NCPLR  # a quick look

For every method and size N, in its own subprocess (so that its peak RSS is its own):

1. simulated clustered features of N training samples: ``make_features`` of
   ``benchmarks/bench_cluster.py`` (``N / 16`` Gaussian clusters of unit vectors, within-cluster cosine
   about 0.5), in the dimension of the method's clustering features (ResNet-18: 512; NCPLR with 2
   parts: the 3 branches side by side, each re-normalised);
2. the pseudo-label step as ``PseudoLabelHook.refresh`` does it: ``PseudoLabeler(cfg, samples)(features)``
   (distance → clusterer, with every option of the method's config: eps ∓ gap re-clusterings for
   CDSM, HDC for 3C (its main clusterer, after the DBSCAN warm-up), the mixed Jaccard distance for
   NCPLR), then ``result.replace(features=..., camids=...)`` and ``model.reset_pseudo_labels(result)``
   (memories, classifiers, NCPLR's neighbour graph and prediction bank, CDSM's diversity memory and
   reliability gate, 3C's camera entropies, MTCluster's neighbour map);
3. one training step (``SimpleTrainer.run_step``: forward, losses, backward, optimiser step, plus the
   EMA teacher update of the mean-teacher methods) on a random P x K batch of the pseudo-labels at the
   config's input size and batch size (64 images; MTCluster: 16 clips of 4 frames), after one untimed
   warm-up step.

Configs: the methods' synthetic-world configs (``configs/Synthetic/*.yml``: ResNet-18 from scratch,
64x32 inputs), the only change being ``CLUSTER.NUM_CLUSTERS`` of 3C, taken from its paper configs
(``configs/3C/market1501.yml`` 750 up to N = 20,000, ``configs/3C/msmt17.yml`` 1000 above; at most
N / 16).  ``--config METHOD=FILE`` replaces one, e.g. ``--config NCPLR=configs/NCPLR/market1501.yml``
(the backbone, input size and batch are then set to the synthetic ones).

Columns: ``clusters`` / ``outliers`` of the clustering; ``label s`` (distance + clusterer), ``reset s``
(``reset_pseudo_labels``) and ``step s`` (one training step) in wall-clock seconds; ``base MB`` the RSS
before the pseudo-label step (torch, the model and the features included), ``label peak MB`` the peak
RSS during the pseudo-label step and ``+MB`` its increase over ``base``; ``NxN MB`` the size of one
dense N x N float32 array; ``step peak MB`` the peak RSS of the training step; ``largest state`` the
largest tensor the method stores after ``reset_pseudo_labels``.  Peaks are the kernel's ``VmHWM``,
reset between the phases through ``/proc/self/clear_refs`` where the kernel allows it (otherwise
they are cumulative: the column header says so).

The script exits with status 1, naming the method, size and reason, when any case

* stores a dense N x N array: a tensor or array with two axes at least as long as the number of
  pseudo-labelled samples, in the model (parameters, buffers, tensor attributes of any sub-module)
  or in the ``ClusterResult`` (a dense ``distance``); scipy sparse matrices are fine;
* raises the RSS during the pseudo-label step by at least one N x N float32 array (judged when that
  array is at least ``--rss-check-min-mb``, 256 MB: below it the allocator's noise is larger);
* peaks above ``--max-rss-gb`` (4 GB) in either phase;
* fails (the worker's traceback is printed).
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
import traceback

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
HERE = os.path.dirname(os.path.abspath(__file__))

# method -> its synthetic-world config (ResNet-18, 64x32)
CONFIGS = {
    "ClusterContrast": "configs/Synthetic/cluster_contrast.yml",
    "ISE": "configs/Synthetic/ise.yml",
    "ThreeC": "configs/Synthetic/3c.yml",
    "CDSM": "configs/Synthetic/cdsm.yml",
    "NCPLR": "configs/Synthetic/gl_ncplr.yml",      # GL-NCPLR: 2 parts, MixedJaccardDistance
    "MTCluster": "configs/Synthetic/mtcluster_video.yml",
}
METHODS = tuple(CONFIGS)
# the synthetic recipe's model and batch, applied on top of any --config (paper configs included)
SYNTHETIC_SIZE = ["MODEL.BACKBONE.DEPTH", "18", "MODEL.BACKBONE.LAST_STRIDE", "2",
                  "MODEL.BACKBONE.PRETRAIN", "False", "INPUT.SIZE_TRAIN", "[64, 32]",
                  "INPUT.SIZE_TEST", "[64, 32]", "MODEL.DEVICE", "cpu", "DATALOADER.NUM_WORKERS", "0"]
NUM_CAMERAS = 6


# --------------------------------------------------------------------------------------------
# worker side


def _status_mb(field: str) -> float:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024.0
    return float("nan")


def _reset_peak() -> bool:
    """Reset VmHWM to the current RSS (Linux >= 4.0); False where not allowed."""
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
        return True
    except OSError:
        return False


def _load_make_features():
    """``make_features`` of bench_cluster.py (the clustered-feature generator, reused)."""
    sys.path.insert(0, HERE)
    from bench_cluster import make_features  # noqa: PLC0415

    return make_features


def _paper_num_clusters(n: int) -> int:
    from unreidusl.config import load_yaml_with_base  # noqa: PLC0415

    paper = "configs/3C/market1501.yml" if n <= 20000 else "configs/3C/msmt17.yml"
    value = int(load_yaml_with_base(os.path.join(ROOT, paper))["CLUSTER"]["NUM_CLUSTERS"])
    return max(2, min(value, n // 16))


def build_cfg(method: str, n: int, config: str, batch: int = 0):
    """The method's config with the synthetic model sizes; ``batch`` > 0: images per training
    step (clips of DATALOADER.TRAIN_SEQ_LEN frames for MTCluster)."""
    from unreidusl.engine import setup_cfg  # noqa: PLC0415

    opts = list(SYNTHETIC_SIZE)
    if method == "ThreeC":
        opts += ["CLUSTER.NUM_CLUSTERS", str(_paper_num_clusters(n))]
    cfg = setup_cfg(os.path.join(ROOT, config), opts)
    if batch > 0:
        if method == "MTCluster":
            batch //= max(1, int(cfg.DATALOADER.TRAIN_SEQ_LEN))
        # at least two pseudo-identities (the batch-hard triplet losses need a negative)
        batch = max(batch, 2 * int(cfg.DATALOADER.NUM_INSTANCES))
        cfg = setup_cfg(os.path.join(ROOT, config), opts + ["SOLVER.IMS_PER_BATCH", str(batch)])
    return cfg


def _dense_nxn(name: str, value, m: int):
    """A description if ``value`` is a dense array with two axes of length >= m, else None."""
    import numpy as np  # noqa: PLC0415
    import torch  # noqa: PLC0415

    if isinstance(value, (torch.Tensor, np.ndarray)):
        shape = tuple(value.shape)
        if sum(1 for s in shape if s >= m) >= 2:
            nbytes = value.element_size() * value.numel() if isinstance(value, torch.Tensor) else value.nbytes
            return f"{name} {list(shape)} ({nbytes / 2**20:.0f} MB)"
    return None


def _stored_tensors(model):
    """(qualified name, defining file, tensor) of every tensor a model holds: parameters, buffers and
    plain tensor / array attributes of every sub-module (lists and tuples of them included)."""
    import inspect  # noqa: PLC0415

    import numpy as np  # noqa: PLC0415
    import torch  # noqa: PLC0415

    out = []
    for mod_name, module in model.named_modules():
        try:
            where = os.path.relpath(inspect.getsourcefile(type(module)) or "?", ROOT)
        except TypeError:
            where = "?"
        prefix = f"{mod_name}." if mod_name else ""
        for name, t in list(module.named_parameters(recurse=False)) + list(module.named_buffers(recurse=False)):
            out.append((f"{type(module).__name__}:{prefix}{name}", where, t))
        for name, v in vars(module).items():
            if name.startswith("_"):
                continue
            items = v if isinstance(v, (list, tuple)) else [v]
            for j, x in enumerate(items):
                if isinstance(x, (torch.Tensor, np.ndarray)):
                    sub = f"[{j}]" if isinstance(v, (list, tuple)) else ""
                    out.append((f"{type(module).__name__}:{prefix}{name}{sub}", where, x))
    return out


def _data_id(x) -> int:
    import numpy as np  # noqa: PLC0415

    return x.__array_interface__["data"][0] if isinstance(x, np.ndarray) else x.data_ptr()


def _nbytes(x) -> int:
    import numpy as np  # noqa: PLC0415

    return x.nbytes if isinstance(x, np.ndarray) else x.element_size() * x.numel()


def _pk_batch(cfg, labels, keep, camids, rng):
    """A random P x K batch of pseudo-labelled samples at the config's input and batch size."""
    import numpy as np  # noqa: PLC0415
    import torch  # noqa: PLC0415

    k = max(1, int(cfg.DATALOADER.NUM_INSTANCES))
    batch = int(cfg.SOLVER.IMS_PER_BATCH)
    p = max(1, batch // k)
    kept_labels = labels[keep]
    clusters = np.unique(kept_labels)
    chosen = rng.choice(clusters, size=min(p, len(clusters)), replace=False)
    rows = []
    for c in chosen:
        members = np.flatnonzero(kept_labels == c)
        rows += rng.choice(members, size=k, replace=len(members) < k).tolist()
    rows = np.asarray(rows)
    h, w = cfg.INPUT.SIZE_TRAIN
    video = cfg.MODEL.META_ARCHITECTURE == "MTCluster"
    shape = (len(rows), int(cfg.DATALOADER.TRAIN_SEQ_LEN), 3, h, w) if video else (len(rows), 3, h, w)
    gen = torch.Generator().manual_seed(0)
    return {"images": torch.randn(*shape, generator=gen),
            "targets": torch.as_tensor(kept_labels[rows], dtype=torch.long),
            "camids": torch.as_tensor(camids[keep][rows], dtype=torch.long),
            "index": torch.as_tensor(rows, dtype=torch.long)}


def worker(method: str, n: int, config: str, seed: int, batch: int = 0, warmup: int = 1) -> dict:
    import numpy as np  # noqa: PLC0415
    import torch  # noqa: PLC0415

    from unreidusl.cluster.pipeline import PseudoLabeler  # noqa: PLC0415
    from unreidusl.data import Sample  # noqa: PLC0415
    from unreidusl.engine.train_loop import SimpleTrainer  # noqa: PLC0415
    from unreidusl.modeling import build_model  # noqa: PLC0415
    from unreidusl.solver import build_optimizer  # noqa: PLC0415
    from unreidusl.utils.events import EventStorage  # noqa: PLC0415

    make_features = _load_make_features()
    cfg = build_cfg(method, n, config, batch)
    torch.manual_seed(seed)
    model = build_model(cfg)
    model.eval()
    branches = getattr(model, "num_branches", 1)
    dim = model.encoder.feat_dim if hasattr(model, "encoder") else model.student.feat_dim
    x, truth = make_features(n, dim * branches, seed)
    if branches > 1:  # the branches side by side, each a unit vector (as _BranchFeatures gives)
        x = x.reshape(n, branches, dim)
        x /= np.linalg.norm(x, axis=2, keepdims=True)
        x = x.reshape(n, branches * dim)
    features = torch.from_numpy(x)
    rng = np.random.default_rng(seed)
    camids = rng.integers(0, NUM_CAMERAS, n)
    samples = [Sample((f"sim/{i:06d}.jpg",), int(truth[i]), int(camids[i]), (float(i),)) for i in range(n)]
    labeler = PseudoLabeler(cfg, samples)
    labeler.set_epoch(cfg.CLUSTER.WARMUP_EPOCHS)  # the main clusterer (3C: HDC after the warm-up)
    res = {"method": method, "n": n, "config": config, "clusterer": type(labeler.clusterer).__name__,
           "distance": type(labeler.distance).__name__ if labeler.distance is not None else "-"}

    # --- the pseudo-label step ---------------------------------------------------------------
    before = {name: (tuple(t.shape), _data_id(t)) for name, _, t in _stored_tensors(model)}
    res["peak_reset"] = _reset_peak()
    res["base_mb"] = _status_mb("VmRSS")
    t0 = time.perf_counter()
    result = labeler(features)
    t1 = time.perf_counter()
    result = result.replace(features=features, camids=torch.as_tensor(camids, dtype=torch.long))
    model.reset_pseudo_labels(result)
    t2 = time.perf_counter()
    res["label_peak_mb"] = _status_mb("VmHWM")
    labels = np.asarray(result.labels)
    keep = np.flatnonzero(labels >= 0)
    res.update(label_s=t1 - t0, reset_s=t2 - t1, clusters=int(result.num_clusters),
               outliers=float((labels < 0).mean()), kept=int(len(keep)))

    # --- what reset_pseudo_labels stored (new or re-shaped tensors) and what the result holds -------
    m = max(2, len(keep))
    dense, largest = [], ("-", "", 0)
    for name, where, t in _stored_tensors(model):
        if before.get(name) == (tuple(t.shape), _data_id(t)):
            continue  # untouched by the pseudo-label step (backbone weights, ...)
        hit = _dense_nxn(name, t, m)
        if hit:
            dense.append(f"{hit}, set in {where} (reset_pseudo_labels of {type(model).__name__})")
        if _nbytes(t) > largest[2]:
            largest = (name, list(t.shape), _nbytes(t))
    for field in ("distance", "labels", "labels_tight", "labels_loose", "core", "centroid_labels"):
        hit = _dense_nxn(f"ClusterResult.{field}", getattr(result, field, None), m)
        if hit:
            dense.append(f"{hit}, made by {type(labeler.distance).__name__} / PseudoLabeler")
    res["dense"] = dense
    res["largest_state"] = f"{largest[0]} {largest[1]} {largest[2] / 2**20:.1f} MB" if largest[2] else "-"
    del result

    # --- one training step ------------------------------------------------------------------------
    batch = _pk_batch(cfg, labels, keep, camids, rng)
    trainer = SimpleTrainer(model, build_optimizer(cfg, model))
    trainer.storage = EventStorage()
    trainer.data_loader = [batch]
    if getattr(model, "tracks_progress", False):
        model.set_progress(1, 100)

    def step(i):
        trainer.iter, trainer.epoch, trainer.inner_iter = i, 0, i
        trainer.run_step()
        if getattr(model, "has_teacher", False):
            model.update_teacher(i + 1)

    for i in range(warmup):  # untimed (lazy initialisations)
        step(i)
    _reset_peak()
    t3 = time.perf_counter()
    step(warmup)
    res["step_s"] = time.perf_counter() - t3
    res["step_peak_mb"] = _status_mb("VmHWM")
    res["loss"] = float(trainer.storage.latest()["total_loss"][0])
    res["batch"] = list(batch["images"].shape)
    return res


# --------------------------------------------------------------------------------------------
# driver side


def run_case(method: str, n: int, config: str, args) -> dict:
    if args.in_process:
        try:
            return worker(method, n, config, args.seed, args.batch, args.warmup)
        except Exception:  # noqa: BLE001 - reported as a failed case
            return {"method": method, "n": n, "error": traceback.format_exc(limit=-8)}
    timeout = args.timeout
    cmd = [sys.executable, os.path.abspath(__file__), "--worker", method, str(n), "--seed", str(args.seed),
           "--config", f"{method}={config}", "--batch", str(args.batch), "--warmup", str(args.warmup)]
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"method": method, "n": n, "error": f"timed out after {timeout:.0f} s"}
    for line in out.stdout.splitlines():
        if line.startswith("RESULT "):
            return json.loads(line[7:])
    tail = "\n".join((out.stdout + out.stderr).strip().splitlines()[-25:])
    return {"method": method, "n": n, "error": f"worker exited with status {out.returncode}:\n{tail}"}


def judge(res: dict, args) -> list:
    """The reasons a case fails (empty: it passes)."""
    if "error" in res:
        return [res["error"]]
    why = []
    n = res["n"]
    nxn_mb = n * n * 4 / 2**20
    for d in res["dense"]:
        why.append(f"holds a dense N x N array: {d}")
    grow = res["label_peak_mb"] - res["base_mb"]
    if nxn_mb >= args.rss_check_min_mb and grow >= nxn_mb:
        why.append(f"the pseudo-label step raised the RSS by {grow:.0f} MB >= one N x N float32 array "
                   f"({nxn_mb:.0f} MB): a dense N x N array was allocated on the way "
                   f"(distance {res['distance']}, clusterer {res['clusterer']}, reset_pseudo_labels of "
                   f"{res['method']})")
    limit = args.max_rss_gb * 1024
    for key, phase in (("label_peak_mb", "pseudo-label step"), ("step_peak_mb", "training step")):
        if res[key] > limit:
            why.append(f"peak RSS {res[key]:.0f} MB in the {phase} exceeds {args.max_rss_gb:g} GB")
    return why


def table(results, cumulative: bool) -> str:
    headers = ["method", "N", "clusters", "outliers", "label s", "reset s", "step s", "base MB",
               "label peak MB" + (" (cumulative)" if cumulative else ""), "+MB", "NxN MB",
               "step peak MB" + (" (cumulative)" if cumulative else ""), "largest state", "status"]
    rows = []
    for r in results:
        status = "FAIL" if r["why"] else "ok"
        if "error" in r:
            rows.append([r["method"], r["n"]] + ["-"] * 11 + [status])
            continue
        rows.append([r["method"], r["n"], r["clusters"], f"{100 * r['outliers']:.1f}%", f"{r['label_s']:.2f}",
                     f"{r['reset_s']:.2f}", f"{r['step_s']:.2f}", f"{r['base_mb']:.0f}",
                     f"{r['label_peak_mb']:.0f}", f"{r['label_peak_mb'] - r['base_mb']:.0f}",
                     f"{r['n'] * r['n'] * 4 / 2**20:.0f}", f"{r['step_peak_mb']:.0f}", r["largest_state"], status])
    try:
        from tabulate import tabulate  # noqa: PLC0415

        return tabulate(rows, headers=headers, tablefmt="github", disable_numparse=True)
    except ImportError:
        lines = [" | ".join(headers)] + [" | ".join(str(c) for c in r) for r in rows]
        return "\n".join(lines)


def parse_configs(items):
    out = dict(CONFIGS)
    for item in items or ():
        if "=" not in item:
            raise SystemExit(f"--config expects METHOD=FILE, got {item!r}")
        k, v = item.split("=", 1)
        if k not in CONFIGS:
            raise SystemExit(f"--config: unknown method {k!r}; choose from {list(CONFIGS)}")
        out[k] = v
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", nargs="+", type=int, default=[12936, 32621],
                    help="numbers of training samples N (default: Market-1501's and MSMT17's)")
    ap.add_argument("--methods", nargs="+", default=list(METHODS), choices=METHODS)
    ap.add_argument("--config", action="append", default=[], metavar="METHOD=FILE",
                    help="another config for a method (repeatable)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--max-rss-gb", type=float, default=4.0, help="fail above this peak RSS")
    ap.add_argument("--rss-check-min-mb", type=float, default=256.0,
                    help="judge the RSS increase against N x N float32 only when that array is at "
                         "least this big")
    ap.add_argument("--timeout", type=float, default=3600.0, help="seconds per case")
    ap.add_argument("--batch", type=int, default=0,
                    help="images per training step (default: the config's; MTCluster: / TRAIN_SEQ_LEN clips)")
    ap.add_argument("--warmup", type=int, default=1, help="untimed training steps before the timed one")
    ap.add_argument("--in-process", action="store_true",
                    help="run every case in this process (faster start, for smoke tests; the peaks "
                         "then include the earlier cases' leftovers)")
    ap.add_argument("--json", default="", help="also write the results to this file")
    ap.add_argument("--worker", nargs=2, metavar=("METHOD", "N"), help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    configs = parse_configs(args.config)
    if args.worker:
        method, n = args.worker[0], int(args.worker[1])
        sys.path.insert(0, ROOT)
        try:
            res = worker(method, n, configs[method], args.seed, args.batch, args.warmup)
        except Exception:  # noqa: BLE001 - reported by the driver
            traceback.print_exc()
            return 1
        print("RESULT " + json.dumps(res), flush=True)
        return 0

    sys.path.insert(0, ROOT)
    import torch  # noqa: PLC0415 - only for the header line

    print(f"# bench_pseudo_label: torch {torch.__version__}, {os.cpu_count()} CPUs, "
          f"{torch.get_num_threads()} torch threads; sizes {args.sizes}", flush=True)
    results = []
    for n in args.sizes:
        for method in args.methods:
            start = time.perf_counter()
            res = run_case(method, n, configs[method], args)
            res["why"] = judge(res, args)
            results.append(res)
            state = "FAIL" if res["why"] else "ok"
            print(f"  {method:<16} N={n:<6} {state} ({time.perf_counter() - start:.0f} s)", flush=True)
    cumulative = any("error" not in r and not r.get("peak_reset", True) for r in results)
    print(table(results, cumulative))
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(results, fh, indent=1)
    failed = [r for r in results if r["why"]]
    for r in failed:
        for why in r["why"]:
            print(f"FAIL: {r['method']} at N={r['n']}: {why}", file=sys.stderr)
    if failed:
        print(f"{len(failed)} of {len(results)} cases failed", file=sys.stderr)
        return 1
    print(f"all {len(results)} cases passed: no dense N x N array, peak RSS <= {args.max_rss_gb:g} GB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
