"""What the applications share: a trained model from a checkpoint, the items to work on (a folder, a
list, tracklets or a dataset split), clustering features, and the command-line plumbing.

Config of a checkpoint (:func:`load_trained`): ``--config-file`` when given, else the
``config.yaml`` next to the checkpoint (a training ``OUTPUT_DIR``), else the config stored inside a
training checkpoint; ``KEY VALUE`` pairs override it as for training.

Items (:func:`collect_items`), one ``Sample`` each (``frames``, ``pid``, ``camid``,
``timestamps``; unknown identity = -1, unknown camera = 0, no time = ``()``), from each source:

* an image file: one item;
* a folder: every image below it (recursively, natural order), one item each; with
  ``tracklets=True`` every folder that directly holds images is one tracklet (its frames in
  natural order);
* a list file (``.txt``, ``.lst``): one item per line ``<path>[,<path>...] [<pid> [<camid>
  [<timestamp>[,...]]]]`` (whitespace-separated, or tab-separated when the line holds a tab), paths
  relative to the list's folder, a folder standing for its images (a tracklet), camid counted
  from ``DATASETS.LIST.CAMID_BASE``;
* ``dataset:SPLIT`` or ``dataset:NAME:SPLIT``: a split (``train``, ``query``, ``gallery``) of the
  configured dataset (``DATASETS.TRAIN`` for train, ``DATASETS.TEST`` otherwise) or of the
  registered dataset ``NAME``, with its identities, cameras and times.

``name_rule`` parses identity, camera and time from file names (folders and single images): the
name of a registered image dataset (``Market1501``, ``DukeMTMCreID``, ...: its own rule, cameras
counted from 1) or a regular expression with the named groups ``pid``, ``cam`` and optionally
``time`` (cameras counted from ``camid_base``, default 1).
"""
from __future__ import annotations

import argparse
import hashlib
import logging
import os
import re
import tempfile
from typing import List, Optional, Sequence, Tuple

import numpy as np
import torch

from ..data import Sample

__all__ = ["IMAGE_EXTS", "AppError", "load_trained", "collect_items", "cluster_features",
           "add_model_arguments", "split_opts", "checkpoint_fingerprint", "parse_name_rule",
           "items_have_identities"]

logger = logging.getLogger(__name__)

IMAGE_EXTS = (".jpg", ".jpeg", ".png", ".bmp", ".webp")
_DIGITS = re.compile(r"(\d+)")


class AppError(RuntimeError):
    """A problem with the user's inputs; the tools print its message in one line."""


def natural_key(name: str):
    return [int(t) if t.isdigit() else t.lower() for t in _DIGITS.split(name)]


# ------------------------------------------------------------------------------ the model
def _config_for(checkpoint: str, config_file: str, state: Optional[dict]) -> Tuple[str, Optional[str]]:
    """(config file to use, temporary file to delete afterwards or None)."""
    if config_file:
        return config_file, None
    beside = os.path.join(os.path.dirname(os.path.abspath(checkpoint)), "config.yaml")
    if os.path.isfile(beside):
        return beside, None
    text = state.get("config") if isinstance(state, dict) else None
    if isinstance(text, str) and text.strip():
        fd, tmp = tempfile.mkstemp(suffix=".yaml", prefix="unreidusl-ckpt-config-")
        with os.fdopen(fd, "w") as f:
            f.write(text)
        return tmp, tmp
    raise AppError(f"{checkpoint} holds no config and there is no config.yaml next to it: give the "
                   f"training config with --config-file")


def load_trained(checkpoint: str, config_file: str = "", opts: Optional[Sequence[str]] = None):
    """``(cfg, model, state)``: the frozen config, the model with the checkpoint's weights in eval
    mode on ``MODEL.DEVICE``, and the checkpoint's dict (``state["model"]`` etc.; for a bare state
    dict ``{"model": it}``). ``checkpoint`` "" builds the randomly initialised model (with a
    warning) from ``config_file``."""
    from ..engine import setup_cfg  # noqa: PLC0415 - engine imports the whole toolkit
    from ..modeling import build_model  # noqa: PLC0415
    from ..utils.checkpoint import load_checkpoint  # noqa: PLC0415

    state = None
    if checkpoint:
        if not os.path.isfile(checkpoint):
            raise AppError(f"checkpoint {checkpoint} does not exist")
        state = load_checkpoint(checkpoint)
    elif not config_file:
        raise AppError("give --checkpoint (a trained model) or at least --config-file")
    path, tmp = _config_for(checkpoint, config_file, state) if checkpoint else (config_file, None)
    try:
        cfg = setup_cfg(path, list(opts or []))
    finally:
        if tmp is not None:
            os.unlink(tmp)
    model = build_model(cfg)
    if state is None:
        logger.warning("No checkpoint: using the randomly initialised %s", type(model).__name__)
        state = {}
    else:
        weights = state.get("model", state)
        try:
            model.load_state_dict(weights)
        except RuntimeError as e:
            raise AppError(f"{checkpoint} does not fit the {type(model).__name__} this config builds "
                           f"(check --config-file, MODEL.BACKBONE.DEPTH, MODEL.META_ARCHITECTURE): "
                           f"{str(e).splitlines()[0][:300]}") from None
        if "model" not in state:
            state = {"model": weights}
        logger.info("Loaded %s from %s (config %s)", type(model).__name__, checkpoint, path)
    model.eval()
    return cfg, model, state


def checkpoint_fingerprint(checkpoint: str) -> str:
    """SHA-256 of the checkpoint file (what an index was built with), or "random" without one."""
    if not checkpoint:
        return "random"
    h = hashlib.sha256()
    with open(checkpoint, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


# ------------------------------------------------------------------------------ the items
def parse_name_rule(rule: str, camid_base: int = 1):
    """``(compiled regex, camid_base)`` of ``rule`` (module docstring), or None for ""."""
    if not rule:
        return None
    from ..data import DATASET_REGISTRY  # noqa: PLC0415

    if rule in DATASET_REGISTRY:
        pattern = getattr(DATASET_REGISTRY.get(rule), "name_rule", None)
        if pattern is None or not getattr(pattern, "pattern", ""):
            raise AppError(f"--name-rule {rule}: that dataset has no file-name rule (it is not an "
                           f"image-folder layout); give a regular expression")
        return pattern, 1
    try:
        pattern = re.compile(rule)
    except re.error as e:
        raise AppError(f"--name-rule {rule!r} is neither a registered dataset nor a regular "
                       f"expression ({e})") from None
    if "pid" not in pattern.groupindex and "cam" not in pattern.groupindex:
        raise AppError(f"--name-rule {rule!r} has no named group (?P<pid>...) or (?P<cam>...)")
    return pattern, camid_base


def _from_name(path: str, rule) -> Tuple[int, int, Tuple[float, ...]]:
    if rule is None:
        return -1, 0, ()
    pattern, base = rule
    m = pattern.match(os.path.basename(path))
    if m is None:
        raise AppError(f"{path}: the file name does not follow the --name-rule {pattern.pattern!r}")
    groups = m.groupdict()
    pid = int(groups["pid"]) if groups.get("pid") is not None else -1
    cam = int(groups["cam"]) - base if groups.get("cam") is not None else 0
    ts = (float(groups["time"]),) if groups.get("time") is not None else ()
    return pid, cam, ts


def _images_in(folder: str, recursive: bool) -> List[str]:
    out = []
    if recursive:
        for dirpath, dirnames, filenames in os.walk(folder):
            dirnames.sort(key=natural_key)
            out += [os.path.join(dirpath, f) for f in sorted(filenames, key=natural_key)
                    if f.lower().endswith(IMAGE_EXTS)]
        return out
    with os.scandir(folder) as it:
        names = sorted((e.name for e in it if e.is_file() and e.name.lower().endswith(IMAGE_EXTS)),
                       key=natural_key)
    return [os.path.join(folder, n) for n in names]


def _tracklet(frames: List[str], rule) -> Sample:
    parsed = [_from_name(f, rule) for f in frames]
    pids = {p for p, _, _ in parsed}
    cams = {c for _, c, _ in parsed}
    if len(pids) > 1 or len(cams) > 1:
        raise AppError(f"{os.path.dirname(frames[0])}: the frames of one tracklet name several "
                       f"identities or cameras ({sorted(pids)}, {sorted(cams)})")
    ts = tuple(t for _, _, tt in parsed for t in tt)
    return Sample(tuple(frames), parsed[0][0], parsed[0][1], ts if len(ts) == len(frames) else ())


def _from_folder(folder: str, tracklets: bool, rule) -> List[Sample]:
    if not tracklets:
        return [Sample((p,), *_from_name(p, rule)) for p in _images_in(folder, recursive=True)]
    out = []
    for dirpath, dirnames, _ in os.walk(folder):
        dirnames.sort(key=natural_key)
        frames = _images_in(dirpath, recursive=False)
        if frames:
            out.append(_tracklet(frames, rule))
    return out


def _number(text, kind):
    try:
        return kind(text)
    except ValueError:
        return None


def _from_list(path: str, camid_base: int) -> List[Sample]:
    base = os.path.dirname(os.path.abspath(path))
    out = []
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            text = line.rstrip("\r\n")
            if not text.strip() or text.lstrip().startswith("#"):
                continue
            fields = [x.strip() for x in (text.split("\t") if "\t" in text else text.split())
                      if x.strip()]
            where = f"{path}:{lineno}"
            if len(fields) > 4:
                raise AppError(f"{where}: expected '<path>[,<path>...] [<pid> [<camid> "
                               f"[<timestamps>]]]', got {len(fields)} fields")
            frames: List[str] = []
            for p in fields[0].split(","):
                p = p if os.path.isabs(p) else os.path.join(base, p)
                frames += _images_in(p, recursive=False) if os.path.isdir(p) else [p]
            if not frames:
                raise AppError(f"{where}: {fields[0]} holds no image")
            pid = _number(fields[1], int) if len(fields) > 1 else -1
            cam = _number(fields[2], int) if len(fields) > 2 else camid_base
            if pid is None or cam is None:
                raise AppError(f"{where}: pid and camid must be integers, got {text!r}")
            ts: Tuple[float, ...] = ()
            if len(fields) > 3:
                vals = [_number(t, float) for t in fields[3].split(",")]
                if any(v is None for v in vals) or len(vals) != len(frames):
                    raise AppError(f"{where}: give one numeric timestamp per frame ({len(frames)})")
                ts = tuple(vals)
            out.append(Sample(tuple(frames), pid, cam - camid_base, ts))
    return out


def _from_dataset(cfg, spec: str) -> List[Sample]:
    from ..data import DATASET_REGISTRY, build_dataset  # noqa: PLC0415

    parts = spec.split(":")[1:]
    if len(parts) == 1:
        split = parts[0]
        name = cfg.DATASETS.TRAIN if split == "train" else cfg.DATASETS.TEST
    elif len(parts) == 2:
        name, split = parts
    else:
        raise AppError(f"{spec}: write dataset:SPLIT or dataset:NAME:SPLIT")
    if split not in ("train", "query", "gallery"):
        raise AppError(f"{spec}: the split must be train, query or gallery")
    if name not in DATASET_REGISTRY:
        raise AppError(f"{spec}: no dataset named {name!r} is registered")
    samples = list(getattr(build_dataset(cfg, name), split))
    if not samples:
        raise AppError(f"{spec}: the {split} split of {name} is empty")
    return samples


def collect_items(sources: Sequence[str], cfg=None, tracklets: bool = False, name_rule: str = "",
                  camid_base: int = 1) -> List[Sample]:
    """The items of ``sources`` in order (module docstring)."""
    rule = parse_name_rule(name_rule, camid_base)
    out: List[Sample] = []
    for src in sources:
        if src.startswith("dataset:"):
            if cfg is None:
                raise AppError(f"{src}: a dataset split needs the config")
            out += _from_dataset(cfg, src)
        elif os.path.isdir(src):
            items = _from_folder(src, tracklets, rule)
            if not items:
                raise AppError(f"{src} holds no image ({', '.join(IMAGE_EXTS)})")
            out += items
        elif os.path.isfile(src) and src.lower().endswith(IMAGE_EXTS):
            out.append(Sample((src,), *_from_name(src, rule)))
        elif os.path.isfile(src):
            base = int(cfg.DATASETS.LIST.CAMID_BASE) if cfg is not None else 0
            out += _from_list(src, base)
        else:
            raise AppError(f"{src} is neither an image, a folder, a list file nor dataset:SPLIT")
    if not out:
        raise AppError("no items to work on")
    return out


def items_have_identities(samples: Sequence[Sample]) -> bool:
    """True when every item's identity is known (pid >= 0)."""
    return bool(samples) and all(s.pid >= 0 for s in samples)


# ------------------------------------------------------------------------------ features
def cluster_features(model, cfg, samples, epoch: int = 0, show_progress: bool = True) -> torch.Tensor:
    """The features the trainer clusters, one row per sample (``PseudoLabelHook``): the model's
    ``cluster_extractor()`` over ``build_cluster_loader`` (images), or the clip draws of a video
    sample averaged and re-normalised (draws seeded by ``(SEED, epoch)``)."""
    from ..data import build_cluster_loader, is_single_frame  # noqa: PLC0415
    from ..evaluation.extract import extract_cluster_features, extract_features  # noqa: PLC0415

    extractor = model.cluster_extractor()
    if is_single_frame(samples):
        return extract_features(extractor, build_cluster_loader(cfg, samples), "clustering features",
                                show_progress=show_progress)
    feats, owner = extract_cluster_features(extractor, cfg, samples, epoch)
    if len(feats) == len(samples):
        return feats
    mean = torch.zeros(len(samples), feats.shape[1]).index_add_(0, owner, feats)
    return torch.nn.functional.normalize(mean, dim=1)


# ------------------------------------------------------------------------------ command line
def add_model_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--checkpoint", default="", metavar="PTH",
                        help="trained model: a training checkpoint (model_final.pth) or a state dict")
    parser.add_argument("--config-file", default="", metavar="FILE",
                        help="training config (default: config.yaml next to the checkpoint, else "
                             "the config stored in the checkpoint)")
    parser.add_argument("opts", nargs=argparse.REMAINDER, default=[],
                        help="KEY VALUE pairs overriding the config, e.g. TEST.RERANK.ENABLED True")


def parse_model_command(parser: argparse.ArgumentParser, argv, default_output: str):
    """Arguments of a command that loads a trained model (``add_model_arguments``), and its output
    folder: ``--output``, else ``<checkpoint's folder>/<default_output>``."""
    args = parser.parse_args(argv)
    split_opts(args, parser)
    if not args.checkpoint and not args.config_file:
        parser.error("give --checkpoint (and/or --config-file)")
    out_dir = args.output or os.path.join(os.path.dirname(os.path.abspath(args.checkpoint or ".")),
                                          default_output)
    return args, out_dir


def split_opts(args, parser: argparse.ArgumentParser) -> None:
    """``argparse.REMAINDER`` swallows the flags given after the first KEY VALUE pair: parse them,
    leaving only the KEY VALUE pairs in ``args.opts``."""
    opts, pairs = list(args.opts or []), []
    while True:
        if opts and opts[0] == "--":
            opts = opts[1:]
        first = next((i for i, tok in enumerate(opts) if tok.startswith("--")), None)
        if first is None:
            pairs += opts
            break
        pairs += opts[:first]
        args.opts = []
        parser.parse_args(opts[first:], namespace=args)
        opts = list(args.opts or [])
    args.opts = pairs
    if len(pairs) % 2:
        parser.error(f"config overrides must be KEY VALUE pairs, got {pairs}")


def to_numpy(x) -> np.ndarray:
    return x.detach().cpu().numpy() if hasattr(x, "detach") else np.asarray(x)
