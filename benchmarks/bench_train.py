"""Benchmark: training throughput (images/s) and peak memory of one optimisation step.

    python benchmarks/bench_train.py                             # CPU (and CUDA when available)
    python benchmarks/bench_train.py --batch-sizes 16 32 --iters 3 --devices cpu
    python benchmarks/bench_train.py --devices cuda --batch-sizes 64 128 --iters 20

Each case (device, precision, memory layout, batch size) runs in its own process: the default
Cluster Contrast model (``configs`` defaults: ResNet-50, last stride 1, 256x128 inputs, GeM, BN
neck, cluster memory of ``--clusters`` centroids) does ``SimpleTrainer.run_step`` on random P×K
batches already on the device (data loading excluded) — forward, InfoNCE loss, memory update,
backward, Adam step — ``--warmup`` untimed steps, then ``--iters`` timed ones.

* precision: ``fp32``, ``bf16`` (``SOLVER.AMP.ENABLED True``, autocast bfloat16), ``fp16``
  (float16 autocast + GradScaler, CUDA only);
* layout: ``nchw`` or ``channels-last`` (``MODEL.CHANNELS_LAST True``);
* peak memory: peak RSS of the process on CPU (torch itself included), ``max_memory_allocated``
  on CUDA.
"""
import argparse
import json
import os
import resource
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

PRECISIONS = {"fp32": [], "bf16": ["SOLVER.AMP.ENABLED", "True", "SOLVER.AMP.DTYPE", "bfloat16"],
              "fp16": ["SOLVER.AMP.ENABLED", "True", "SOLVER.AMP.DTYPE", "float16"]}


def _peak_rss_mb() -> float:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024.0
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def worker(device, precision, layout, batch, iters, warmup, depth, clusters):
    import numpy as np
    import torch

    from unreidusl.engine import setup_cfg
    from unreidusl.engine.amp import build_mixed_precision
    from unreidusl.engine.train_loop import SimpleTrainer
    from unreidusl.modeling import build_model
    from unreidusl.solver import build_optimizer
    from unreidusl.utils.events import EventStorage

    opts = ["MODEL.DEVICE", device, "MODEL.BACKBONE.DEPTH", str(depth),
            "MODEL.CHANNELS_LAST", str(layout == "channels-last")] + PRECISIONS[precision]
    cfg = setup_cfg("", opts)
    torch.manual_seed(0)
    model = build_model(cfg)
    dim = model.encoder.feat_dim
    model.reset_pseudo_labels(torch.randn(clusters * 4, dim), np.repeat(np.arange(clusters), 4))
    trainer = SimpleTrainer(model, build_optimizer(cfg, model))
    trainer.amp = build_mixed_precision(cfg, torch.device(device))
    trainer.storage = EventStorage()
    h, w = cfg.INPUT.SIZE_TRAIN
    k = cfg.DATALOADER.NUM_INSTANCES
    gen = torch.Generator().manual_seed(0)
    batches = [{"images": torch.randn(batch, 3, h, w, generator=gen).to(device),
                "targets": torch.randint(0, clusters, (batch // k,), generator=gen).repeat_interleave(k)}
               for _ in range(2)]
    trainer.data_loader = batches
    cuda = device.startswith("cuda")

    def steps(n):
        for _ in range(n):
            trainer.run_step()
        if cuda:
            torch.cuda.synchronize()

    steps(warmup)
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    start = time.perf_counter()
    steps(iters)
    seconds = time.perf_counter() - start
    peak = torch.cuda.max_memory_allocated() / 2**20 if cuda else _peak_rss_mb()
    return {"ims_per_s": batch * iters / seconds, "s_per_it": seconds / iters, "peak_mb": peak,
            "loss": trainer.storage.latest()["total_loss"][0]}


def device_name(device: str) -> str:
    import torch

    if device.startswith("cuda"):
        return torch.cuda.get_device_name(0)
    try:
        with open("/proc/cpuinfo") as fh:
            model = next(line.split(":", 1)[1].strip() for line in fh if line.startswith("model name"))
    except (OSError, StopIteration):
        model = "CPU"
    return f"{model}, {torch.get_num_threads()} threads"


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--devices", nargs="+", default=None, help="cpu and/or cuda (default: cpu, + cuda if present)")
    ap.add_argument("--precisions", nargs="+", default=None, choices=sorted(PRECISIONS),
                    help="default: fp32 bf16 (+ fp16 on CUDA)")
    ap.add_argument("--layouts", nargs="+", default=["nchw", "channels-last"], choices=["nchw", "channels-last"])
    ap.add_argument("--batch-sizes", nargs="+", type=int, default=None,
                    help="default: 16 32 on CPU, 64 128 on CUDA")
    ap.add_argument("--iters", type=int, default=3, help="timed steps per case")
    ap.add_argument("--warmup", type=int, default=1, help="untimed steps per case")
    ap.add_argument("--depth", type=int, default=50, help="ResNet depth (MODEL.BACKBONE.DEPTH)")
    ap.add_argument("--clusters", type=int, default=500, help="memory size (pseudo-identities)")
    ap.add_argument("--worker", nargs=4, metavar=("DEVICE", "PRECISION", "LAYOUT", "BATCH"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        device, precision, layout, batch = args.worker
        print("RESULT " + json.dumps(worker(device, precision, layout, int(batch), args.iters, args.warmup,
                                            args.depth, args.clusters)))
        return
    import torch
    from tabulate import tabulate

    devices = args.devices or (["cpu", "cuda"] if torch.cuda.is_available() else ["cpu"])
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [ROOT, os.environ.get("PYTHONPATH")])))
    rows = []
    for device in devices:
        cuda = device.startswith("cuda")
        precisions = args.precisions or (["fp32", "bf16", "fp16"] if cuda else ["fp32", "bf16"])
        sizes = args.batch_sizes or ([64, 128] if cuda else [16, 32])
        print(f"{device}: {device_name(device)}", file=sys.stderr)
        for batch in sizes:
            for precision in precisions:
                for layout in args.layouts:
                    cmd = [sys.executable, os.path.abspath(__file__), "--iters", str(args.iters), "--warmup",
                           str(args.warmup), "--depth", str(args.depth), "--clusters", str(args.clusters),
                           "--worker", device, precision, layout, str(batch)]
                    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
                    found = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
                    if not found:
                        rows.append([device, batch, precision, layout, "error: " + proc.stderr.strip()[-200:],
                                     "", "", ""])
                        continue
                    r = json.loads(found[-1][7:])
                    rows.append([device, batch, precision, layout, f"{r['ims_per_s']:.2f}", f"{r['s_per_it']:.2f}",
                                 f"{r['peak_mb']:.0f}", f"{r['loss']:.3f}"])
                    print(" | ".join(map(str, rows[-1])), file=sys.stderr, flush=True)
    memory = "peak MB (CPU: RSS, CUDA: allocated)"
    print(tabulate(rows, headers=["device", "batch", "precision", "layout", "images/s", "s/iter", memory, "loss"],
                   tablefmt="github"))
    print(f"\nResNet-{args.depth}, {args.iters} timed + {args.warmup} warm-up steps per case; "
          + "; ".join(f"{d}: {device_name(d)}" for d in devices)
          + f"; torch {torch.__version__}; load {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
