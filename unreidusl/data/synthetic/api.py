"""``make_synthetic``: generate a dataset folder atomically and idempotently."""
from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any, Dict, Optional, Union

from .config import FORMAT_VERSION, resolve_config
from .jobs import render_plan
from .plan import Plan
from .writers import get_layout
from .world import build_world

MARKER = ".synthetic_complete"
META = "synthetic_meta.json"
GENERATOR = "unreidusl.data.synthetic"

logger = logging.getLogger(__name__)


def _dump(obj: Any) -> bytes:
    return (json.dumps(obj, sort_keys=True, indent=1) + "\n").encode("utf-8")


def _read_marker(folder: Path) -> Optional[Dict[str, Any]]:
    try:
        return json.loads((folder / MARKER).read_text())
    except (OSError, ValueError):
        return None


def _identity(marker: Dict[str, Any]) -> Dict[str, Any]:
    """The fields that decide whether two generations are byte-identical."""
    return {k: marker.get(k) for k in ("generator", "format", "format_version", "seed", "config")}


def _check_existing(target: Path, wanted: Dict[str, Any], overwrite: bool) -> bool:
    """True if ``target`` already holds exactly this dataset; raise if it holds something else."""
    if not target.exists():
        return False
    marker = _read_marker(target)
    if marker is not None and _identity(marker) == _identity(wanted):
        return True
    if not overwrite:
        if marker is None:
            why = "exists but is not a complete synthetic dataset (no valid marker file)"
        else:
            diff = sorted(k for k in _identity(wanted) if _identity(marker)[k] != wanted[k])
            cfg_diff = sorted(k for k in wanted["config"]
                              if (marker.get("config") or {}).get(k) != wanted["config"][k])
            why = f"holds a synthetic dataset generated with different parameters ({diff}" + (
                f"; config fields {cfg_diff})" if cfg_diff else ")")
        raise FileExistsError(f"{target} {why}; pass overwrite=True (CLI: --overwrite) to "
                              "replace it or choose another root")
    looks_synthetic = marker is not None or (target / META).exists() or not any(target.iterdir())
    if not looks_synthetic:
        raise FileExistsError(f"refusing to overwrite {target}: it does not look like a synthetic "
                              f"dataset (no {MARKER} or {META}); delete it by hand if intended")
    return False


def _is_stale_cache(target: Path, wanted: Dict[str, Any]) -> bool:
    """True if ``target`` holds this generator's dataset of the same format, seed and preset, made
    without overrides, by another generator version or preset definition (an outdated cache)."""
    marker = _read_marker(target) if target.exists() else None
    same = ("generator", "format", "seed", "preset")
    return (marker is not None and not marker.get("overrides") and not wanted["overrides"]
            and all(marker.get(k) == wanted[k] for k in same)
            and _identity(marker) != _identity(wanted))


def _install(tmp: Path, target: Path) -> None:
    """Move the finished ``tmp`` folder to ``target`` (replacing an old one) with renames."""
    old = None
    if target.exists():
        old = target.with_name(f".{target.name}.old-{os.getpid()}-{time.monotonic_ns()}")
        os.replace(target, old)
    os.replace(tmp, target)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def make_synthetic(root: Union[str, Path] = "datasets", fmt: str = "market1501", seed: int = 0,
                   preset: str = "small", overwrite: bool = False, workers: Optional[int] = None,
                   refresh_stale: bool = False, **overrides: Any) -> Path:
    """Generate (or reuse) the synthetic dataset ``fmt`` under ``root`` and return its folder.

    ``overrides`` replace :class:`WorldConfig` fields of the ``preset``.  ``workers`` only sets
    the number of rendering processes and never changes the output.  The dataset is written to
    a hidden temporary sibling and renamed into place, with a ``.synthetic_complete`` marker
    (JSON of the parameters) written last.  An existing complete folder with the same
    parameters is returned untouched; one with other parameters (or without a marker) raises
    ``FileExistsError`` unless ``overwrite=True``, which regenerates and replaces it (a folder
    that does not look synthetic is never deleted).  ``refresh_stale=True`` (the dataset twins'
    cache) also replaces a folder generated without overrides for the same format, seed and
    preset by an older ``FORMAT_VERSION`` or preset definition.
    """
    layout = get_layout(fmt)
    cfg = resolve_config(preset, layout.world, overrides, layout.video, fmt=fmt)
    if int(seed) < 0:
        raise ValueError(f"seed must be >= 0, got {seed}")
    cfg_dict = cfg.to_dict()
    wanted = {
        "generator": GENERATOR, "format": fmt, "format_version": FORMAT_VERSION,
        "seed": int(seed), "config": cfg_dict, "preset": preset,
        "overrides": {k: cfg_dict.get(k, []) for k in sorted(overrides)},
    }
    root = Path(root)
    target = root / layout.dirname
    stale = refresh_stale and _is_stale_cache(target, wanted)
    if stale:
        logger.info("Regenerating %s: made by another version of the generator", target)
    if _check_existing(target, wanted, overwrite or stale) and not overwrite:
        return target

    root.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{layout.dirname}.partial-", dir=root))
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o777 & ~umask)  # mkdtemp makes 0700; the dataset should be a normal folder
    try:
        plan = layout.plan(build_world(int(seed), cfg))  # plan.world: after count matching
        render_plan(plan, tmp, workers)
        for rel, data in sorted(plan.files.items()):
            (tmp / rel).parent.mkdir(parents=True, exist_ok=True)
            (tmp / rel).write_bytes(data)
        (tmp / META).write_bytes(_dump(build_meta(wanted, plan.world, plan)))
        (tmp / MARKER).write_bytes(_dump(wanted))
        if not overwrite and _check_existing(target, wanted, stale):  # a concurrent run won
            shutil.rmtree(tmp, ignore_errors=True)
            return target
        try:
            _install(tmp, target)
        except OSError:  # lost a race against a concurrent run: accept its identical result
            if _check_existing(target, wanted, stale):
                shutil.rmtree(tmp, ignore_errors=True)
                return target
            raise
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return target


def build_meta(params: Dict[str, Any], world, plan) -> Dict[str, Any]:
    """The ``synthetic_meta.json`` content (ground truth for evaluation only)."""
    net = world.network
    return {
        **params,
        "time": {"unit": "world frame", "fps": world.cfg.fps, "frame_stride": world.cfg.frame_stride,
                 "note": "frame numbers in file names and start/end_frame are world frames of a "
                         "global clock shared by all cameras; seconds = frame / fps; end inclusive"},
        "cameras": [{"camera": c.index, "pos_m": list(c.pos), "view": c.style.view,
                     "neighbours": net.neighbours(c.index)} for c in net.cameras],
        "transit": [{"from": a, "to": b, "mean_s": round(m, 4), "lognormal_sigma": s}
                    for (a, b), (m, s) in sorted(net.transit.items())],
        "identities": [{"identity": i.uid, "pid": i.pid, "split": i.split, "attributes": i.attrs}
                       for i in world.identities],
        "tracklets": plan.records,
    }


def plan_synthetic(fmt: str = "market1501", seed: int = 0, preset: str = "small",
                   **overrides: Any) -> Plan:
    """The plan of the dataset :func:`make_synthetic` would write (world, every file name and the
    ``synthetic_meta.json`` records), computed without rendering or writing anything: a few
    seconds even for the full-size presets.  :func:`plan_counts` gives its sizes."""
    layout = get_layout(fmt)
    cfg = resolve_config(preset, layout.world, overrides, layout.video, fmt=fmt)
    if int(seed) < 0:
        raise ValueError(f"seed must be >= 0, got {seed}")
    return layout.plan(build_world(int(seed), cfg))


def plan_counts(plan: Plan) -> Dict[str, Dict[str, int]]:
    """Per split (train, query, gallery): what the dataset reader will load, i.e. without junk
    (pid -1): ``ids`` (pid > 0), ``samples`` (images for the image layouts, tracklets for the
    video layouts), ``images`` (frame files), ``distractors`` (samples with pid 0) and
    ``tracklets``; plus ``junk`` (samples the readers drop) and ``cameras``."""
    video = plan.video
    out: Dict[str, Dict[str, Any]] = {}
    for rec in plan.records:
        split = rec["split"]
        s = out.setdefault(split, {"ids": set(), "samples": 0, "images": 0, "distractors": 0,
                                   "tracklets": 0, "junk": 0, "cameras": set()})
        n = len(rec["files"])
        if rec["pid"] == -1:
            s["junk"] += 1 if video else n
            continue
        if rec["pid"] > 0:
            s["ids"].add(rec["pid"])
        s["samples"] += 1 if video else n
        s["distractors"] += (1 if video else n) if rec["pid"] == 0 else 0
        s["images"] += n
        s["tracklets"] += 1
        s["cameras"].add(rec["camera"])
    return {k: {**v, "ids": len(v["ids"]), "cameras": len(v["cameras"])}
            for k, v in sorted(out.items())}


def summarize(folder: Union[str, Path]) -> Dict[str, Dict[str, int]]:
    """Per split: identities (pid > 0), images, cameras and tracklets, from the meta file."""
    meta = json.loads((Path(folder) / META).read_text())
    out: Dict[str, Dict[str, Any]] = {}
    for rec in meta["tracklets"]:
        s = out.setdefault(rec["split"], {"ids": set(), "images": 0, "cams": set(), "tracklets": 0,
                                          "distractor_images": 0, "junk_images": 0})
        if rec["pid"] > 0:
            s["ids"].add(rec["pid"])
        s["images"] += len(rec["files"])
        s["distractor_images"] += len(rec["files"]) if rec["pid"] == 0 else 0
        s["junk_images"] += len(rec["files"]) if rec["pid"] < 0 else 0
        s["cams"].add(rec["camera"])
        s["tracklets"] += 1
    return {k: {**v, "ids": len(v["ids"]), "cams": len(v["cams"])} for k, v in sorted(out.items())}
