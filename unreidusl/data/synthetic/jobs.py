"""Render a plan's frames to disk, optionally in several processes (output is identical)."""
from __future__ import annotations

import multiprocessing as mp
import os
from pathlib import Path
from typing import Dict, List, Optional, Tuple

from ...utils.progress import progress
from .plan import Plan
from .render import Renderer
from .world import World

Job = Tuple[int, List[Tuple[int, List[str]]]]  # (tid, [(frame index, [relpaths])])

_STATE: Dict[str, object] = {}


def _init(world: World, out_dir: str) -> None:
    _STATE["renderer"] = Renderer(world)
    _STATE["out"] = out_dir


def _run(job: Job) -> int:
    renderer: Renderer = _STATE["renderer"]  # type: ignore[assignment]
    out = str(_STATE["out"])
    tid, frames = job
    trk = renderer.world.tracklets[tid]
    params = renderer.tracklet_params(trk)
    n = 0
    for i, paths in frames:
        data = renderer.encode(renderer.render(trk, i, params))
        for rel in paths:
            dst = os.path.join(out, rel)
            os.makedirs(os.path.dirname(dst), exist_ok=True)
            with open(dst, "wb") as fh:
                fh.write(data)
            n += 1
    return n


def default_workers(num_images: int) -> int:
    """Use up to 4 processes for big jobs; a single one for small ones."""
    if num_images < 1500:
        return 1
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # not available on every platform
        cpus = os.cpu_count() or 1
    return max(1, min(4, cpus))


def render_plan(plan: Plan, out_dir: Path, workers: Optional[int] = None) -> int:
    """Write every planned frame under ``out_dir``; return the number of files written. A progress
    bar counts the images (``utils/progress.py``)."""
    jobs: List[Job] = [(tid, sorted((i, paths) for i, paths in per.items()))
                       for tid, per in sorted(plan.jobs.items())]
    workers = default_workers(plan.num_images()) if workers is None else max(1, int(workers))
    total = 0
    with progress(total=sum(len(p) for _, f in jobs for _, p in f), desc="synthetic images",
                  unit="img") as bar:
        if workers == 1 or len(jobs) < 2:
            _init(plan.world, str(out_dir))
            try:
                for j in jobs:
                    n = _run(j)
                    total += n
                    bar.update(n)
                return total
            finally:
                _STATE.clear()
        methods = mp.get_all_start_methods()
        ctx = mp.get_context("fork" if "fork" in methods else "spawn")
        with ctx.Pool(workers, initializer=_init, initargs=(plan.world, str(out_dir))) as pool:
            for n in pool.imap_unordered(_run, jobs, chunksize=8):
                total += n
                bar.update(n)
            return total
