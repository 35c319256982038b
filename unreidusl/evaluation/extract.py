"""Feature extraction in eval mode: images, clips, and all-frames tracklet features.

``extract_features(model, loader)`` returns one row per *item* of ``loader.dataset`` in item
order, whatever the loader yields:

* image batches ``[B, 3, H, W]`` or clip batches ``[B, T, 3, H, W]``: ``model(batch)`` (for clips
  the model averages the pooled frame features over T, then embeds);
* frame batches with ``segments`` (``build_inference_loader`` in "frames" mode, used for video
  test sets): the pooled frame features ``model.frame_features`` are summed per sample with
  ``index_add_`` while streaming the frames in batches (memory: one batch of frames plus one
  ``[num_samples, d]`` accumulator), averaged, and embedded with ``model.embed``.  In eval mode
  the neck is affine, so this is exactly temporal average pooling over all frames.

Items skipped by ``DATASETS.SKIP_CORRUPT`` get a zero feature (a warning says how many).

With ``out_path`` the features are written batch by batch into a float32 file opened as a
``numpy.memmap`` (``utils/feature_file.py``) and the returned tensor maps that file: no ``N x d``
array is held in memory (``CLUSTER.FEATURES_ON_DISK``). In a distributed job give every rank its
own file.

In a distributed job a loader built with ``rank``/``world_size`` holds one contiguous shard per
rank (``InferenceSampler``); the ranks' partial results are summed so that every rank returns all
N features in item order.
"""
import logging
import time
from typing import Tuple

import torch

from ..utils import comm
from ..utils.feature_file import open_feature_file
from ..utils.progress import progress as _progress

logger = logging.getLogger(__name__)

__all__ = ["extract_features", "extract_cluster_features"]


def _device(model: torch.nn.Module) -> torch.device:
    try:
        return next(model.parameters()).device
    except StopIteration:
        return torch.device("cpu")


def _num_items(loader) -> int:
    ds = loader.dataset
    return int(getattr(ds, "num_samples", len(ds)))


def _sharded(loader) -> bool:
    """True when each rank's loader holds one shard (``InferenceSampler`` of a distributed job)."""
    return getattr(loader.sampler, "world_size", 1) > 1


def _new_features(n, dim, out_path=None) -> torch.Tensor:
    """Zero ``[n, dim]`` float32 features: in memory, or mapping the file ``out_path``."""
    if out_path is None:
        return torch.zeros(n, dim, dtype=torch.float32)
    return torch.from_numpy(open_feature_file(out_path, n, dim, "w+"))


def _merge_shards(n, device, out, seen, sums, counts, out_path=None):
    """Sum every rank's rows (image/clip mode) or per-sample frame sums and counts (frames mode) over
    the ranks: each item belongs to one shard, so all ranks end with all N items in item order. A
    rank whose shard is empty contributes zeros."""
    local = torch.tensor([[0 if out is None else out.shape[1], 0 if sums is None else sums.shape[1]]])
    out_dim, sum_dim = (int(v) for v in comm.all_gather_cat(local).max(0).values)
    if sum_dim:
        if sums is None:
            sums = torch.zeros(n, sum_dim, dtype=torch.float32, device=device)
            counts = torch.zeros(n, dtype=torch.float32, device=device)
        return out, seen, comm.all_reduce_sum_(sums), comm.all_reduce_sum_(counts)
    if out_dim:
        if out is None:
            out = _new_features(n, out_dim, out_path)
            seen = torch.zeros(n, dtype=torch.bool)
        comm.all_reduce_sum_(out)
        seen = comm.all_reduce_sum_(seen.to(torch.int32)) > 0
    return out, seen, sums, counts


@torch.no_grad()
def extract_features(model: torch.nn.Module, loader, desc: str = "features",
                     embed_chunk: int = 4096, show_progress: bool = True, out_path=None) -> torch.Tensor:
    """Run ``model`` in eval mode over ``loader`` and return the features [N, d] (float32, CPU),
    in item order. The model's train/eval mode is restored afterwards. A progress bar (rank 0, on
    a terminal; periodic log lines otherwise: ``utils/progress.py``) counts the batches unless
    ``show_progress`` is False. ``out_path``: write them into that float32 file (replaced if it
    exists) and return a tensor mapping it (module docstring)."""
    was_training = model.training
    model.eval()
    start = time.perf_counter()
    n = _num_items(loader)
    out = seen = sums = counts = None
    device = _device(model)
    try:
        batches = _progress(loader, desc=desc, unit="batch") if show_progress else loader
        for batch in batches:
            index = batch["index"]
            if not len(index):
                continue
            if "segments" in batch:
                pooled = model.frame_features(batch["images"].to(device, non_blocking=True)).float()
                if sums is None:
                    sums = torch.zeros(n, pooled.shape[1], dtype=torch.float32, device=device)
                    counts = torch.zeros(n, dtype=torch.float32, device=device)
                seg = batch["segments"].to(device)
                sums.index_add_(0, seg, pooled)
                counts.index_add_(0, seg, torch.ones_like(seg, dtype=torch.float32))
                continue
            feats = model(batch).float().cpu()
            if out is None:
                out = _new_features(n, feats.shape[1], out_path)
                seen = torch.zeros(n, dtype=torch.bool)
            out[index] = feats
            seen[index] = True
        if _sharded(loader):
            out, seen, sums, counts = _merge_shards(n, device, out, seen, sums, counts, out_path)
        if sums is not None:
            seen = (counts > 0).cpu()
            means = sums / counts.clamp(min=1).unsqueeze(1)
            for i in range(0, n, embed_chunk):
                emb = model.embed(means[i:i + embed_chunk]).float().cpu()
                if out is None:
                    out = _new_features(n, emb.shape[1], out_path)
                out[i:i + emb.shape[0]] = emb
            out[~seen] = 0
    finally:
        model.train(was_training)
    if out is None:
        raise RuntimeError(f"No samples to extract {desc} from: the loader is empty")
    missing = int((~seen).sum())
    if missing:
        logger.warning("%d of %d items had no readable frame (DATASETS.SKIP_CORRUPT); their %s are "
                       "zero", missing, n, desc)
    logger.info("Extracted %s of %d samples in %.1fs", desc, n, time.perf_counter() - start)
    return out


def extract_cluster_features(model: torch.nn.Module, cfg, samples, epoch: int = 0, out_path=None) -> \
        Tuple[torch.Tensor, torch.Tensor]:
    """Clustering features of ``samples``: (features [N·R, d], owner [N·R]) where row ``i·R + r``
    is draw r of sample i (``owner[row] = i``); R = ``DATALOADER.CLUSTER_SAMPLE_MULTI`` for video
    (clips of ``CLUSTER_SEQ_LEN`` frames seeded by (SEED, epoch)), 1 for images. ``out_path``: as
    for :func:`extract_features`."""
    from ..data import build_cluster_loader  # noqa: PLC0415 - avoid an import cycle at load time

    loader = build_cluster_loader(cfg, samples, epoch)
    feats = extract_features(model, loader, "clustering features", out_path=out_path)
    draws = int(getattr(loader.dataset, "draws", 1))
    owner = torch.arange(len(samples)).repeat_interleave(draws)
    return feats, owner
