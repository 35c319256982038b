"""Search a collection with a trained model (``unreidusl-search``, ``tools/search.py``).

1. **Index** the gallery: the test features (``model.eval(); model({"images": x})``, tracklets
   averaged over all their frames as the evaluator does) of every item, in shards of
   ``--shard-size`` items written as they are done, so an interrupted run resumes where it stopped
   (same items, same checkpoint) and a finished index is reused. The index folder holds
   ``features.npy`` (N x d float32, item order), ``manifest.json`` / ``manifest.csv`` (the items:
   frames, pid, camid, timestamps) and ``index.json`` (checkpoint and its SHA-256, config, input
   size and normalisation, feature size).
2. **Query**: rank the gallery for every query item (an image, a folder, a tracklet, a list, a
   dataset split, or another index folder) by the evaluator's test distance (``TEST.METRIC``;
   ``--rerank``: k-reciprocal re-ranking with ``TEST.RERANK.*``; the AuxUSLReID terms TOC / SCP /
   STS when the config's ``TEST`` switches are on and the items carry cameras and times), ties
   broken by gallery order, and keep the ``--topk`` nearest (0 = all).

Writes into ``--output``: ``results.json`` (per query: its item and the ranked gallery items with
distance, pid, camid and, when both identities are known, ``match`` / ``junk`` = same identity in
the same camera, which the evaluator ignores), ``results.csv`` (one row per (query, rank)) and
``results.html`` (query + ranked thumbnails; green / red borders when identities are known, grey
for junk and unknown), which opens from the disk without a server: images are linked relatively,
or embedded with ``--embed``.

    unreidusl-search --checkpoint output/synthetic/cluster_contrast/model_final.pth \\
        --gallery dataset:gallery --query dataset:query --output output/search
    unreidusl-search --checkpoint w.pth --gallery /data/cams --query probe.jpg --topk 20 --rerank
    unreidusl-search --index output/search/index --query /data/probes --tracklets
"""
from __future__ import annotations

import argparse
import csv
import hashlib
import json
import logging
import math
import os
import shutil
import sys
import time
from typing import Dict, Iterator, List, Optional, Sequence, Tuple

import numpy as np
import torch

from ..data import Sample
from .common import (AppError, add_model_arguments, checkpoint_fingerprint, collect_items,
                     load_trained, split_opts)

__all__ = ["FeatureIndex", "build_index", "extract_items", "rank_gallery", "search", "topk_stable",
           "write_results", "main"]

logger = logging.getLogger(__name__)

INDEX_FORMAT = "unreidusl-index-1"


# ------------------------------------------------------------------------------ manifest
def _item_record(s: Sample) -> dict:
    return {"frames": [os.path.abspath(str(f)) for f in s.frames], "pid": int(s.pid),
            "camid": int(s.camid), "timestamps": [float(t) for t in s.timestamps]}


def _item_from(rec: dict) -> Sample:
    return Sample(tuple(rec["frames"]), int(rec["pid"]), int(rec["camid"]),
                  tuple(float(t) for t in rec.get("timestamps", ())))


def _items_sha(records: List[dict]) -> str:
    return hashlib.sha256(json.dumps(records, sort_keys=True).encode()).hexdigest()


def _write_json(path: str, obj) -> None:
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(obj, f, indent=1, allow_nan=False)
    os.replace(tmp, path)


def _write_manifest_csv(path: str, items: Sequence[Sample]) -> None:
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["item", "path", "num_frames", "pid", "camid", "time_start", "time_end"])
        for i, s in enumerate(items):
            ts = s.timestamps
            w.writerow([i, s.frames[0], len(s.frames), s.pid, s.camid,
                        min(ts) if ts else "", max(ts) if ts else ""])


def input_description(cfg) -> dict:
    """What an exported / indexed model expects: the test input size and normalisation."""
    i = cfg.INPUT
    return {"input_size_hw": [int(v) for v in i.SIZE_TEST], "channels": "RGB",
            "value_range": "pixel / 255, then (x - mean) / std per channel",
            "pixel_mean": [float(v) for v in i.PIXEL_MEAN], "pixel_std": [float(v) for v in i.PIXEL_STD],
            "resize": "bicubic to input_size_hw (no crop, no padding)"}


# ------------------------------------------------------------------------------ extraction
def extract_items(model, cfg, items: Sequence[Sample], batch_size: Optional[int] = None,
                  show_progress: bool = True) -> np.ndarray:
    """Test features of ``items`` (N x d float32, item order) as the evaluator extracts them."""
    from ..data import build_inference_loader  # noqa: PLC0415
    from ..evaluation.extract import extract_features  # noqa: PLC0415

    loader = build_inference_loader(cfg, list(items), int(batch_size or cfg.TEST.IMS_PER_BATCH))
    return extract_features(model, loader, "search features", show_progress=show_progress).numpy()


class FeatureIndex:
    """An index folder (module docstring, step 1): ``features`` (memory-mapped), ``items``,
    ``meta``."""

    META, FEATURES, MANIFEST = "index.json", "features.npy", "manifest.json"

    def __init__(self, folder: str) -> None:
        self.folder = folder
        path = os.path.join(folder, self.META)
        if not os.path.isfile(path):
            raise AppError(f"{folder} is not an index folder (no {self.META}): build it with --gallery")
        with open(path, encoding="utf-8") as f:
            self.meta = json.load(f)
        if self.meta.get("format") != INDEX_FORMAT:
            raise AppError(f"{path}: not an unreidusl index ({INDEX_FORMAT})")
        if not self.meta.get("complete"):
            raise AppError(f"{folder}: the index is incomplete; run the indexing again to resume it")
        with open(os.path.join(folder, self.MANIFEST), encoding="utf-8") as f:
            self.items = [_item_from(r) for r in json.load(f)["items"]]
        self.features = np.load(os.path.join(folder, self.FEATURES), mmap_mode="r")
        if self.features.shape[0] != len(self.items):
            raise AppError(f"{folder}: {self.features.shape[0]} features for {len(self.items)} items")

    @staticmethod
    def is_index(folder: str) -> bool:
        return os.path.isfile(os.path.join(folder, FeatureIndex.META))

    def __len__(self) -> int:
        return len(self.items)


def _shard_path(folder: str, k: int) -> str:
    return os.path.join(folder, "shards", f"part_{k:05d}.npy")


def build_index(folder: str, model, cfg, items: Sequence[Sample], checkpoint: str = "",
                fingerprint: Optional[str] = None, batch_size: Optional[int] = None,
                shard_size: int = 2048, overwrite: bool = False) -> FeatureIndex:
    """Index ``items`` into ``folder`` (module docstring), resuming an interrupted build of the same
    items with the same checkpoint; an existing complete index of them is returned as it is.
    Another index in ``folder`` is refused unless ``overwrite``."""
    from ..utils.progress import progress  # noqa: PLC0415

    records = [_item_record(s) for s in items]
    fingerprint = fingerprint if fingerprint is not None else checkpoint_fingerprint(checkpoint)
    batch_size = int(batch_size or cfg.TEST.IMS_PER_BATCH)
    shard_size = max(1, int(shard_size))
    wanted = {"format": INDEX_FORMAT, "items_sha256": _items_sha(records), "num_items": len(records),
              "checkpoint": os.path.abspath(checkpoint) if checkpoint else "",
              "checkpoint_sha256": fingerprint, "shard_size": shard_size, "batch_size": batch_size,
              "metric": cfg.TEST.METRIC, "input": input_description(cfg)}
    meta_path = os.path.join(folder, FeatureIndex.META)
    if os.path.isfile(meta_path):
        with open(meta_path, encoding="utf-8") as f:
            old = json.load(f)
        same = all(old.get(k) == wanted[k] for k in ("format", "items_sha256", "checkpoint_sha256",
                                                     "shard_size", "batch_size"))
        if same and old.get("complete"):
            logger.info("Index %s is complete (%d items): reusing it", folder, len(records))
            return FeatureIndex(folder)
        if not same:
            if not overwrite:
                raise AppError(f"{folder} holds an index of other items or of another checkpoint; "
                               f"give another --index folder, or --overwrite to rebuild it")
            for name in (FeatureIndex.META, FeatureIndex.FEATURES, FeatureIndex.MANIFEST,
                         "manifest.csv", "config.yaml"):
                if os.path.exists(os.path.join(folder, name)):
                    os.remove(os.path.join(folder, name))
            shutil.rmtree(os.path.join(folder, "shards"), ignore_errors=True)
    os.makedirs(os.path.join(folder, "shards"), exist_ok=True)
    _write_json(os.path.join(folder, FeatureIndex.MANIFEST), {"items": records})
    _write_manifest_csv(os.path.join(folder, "manifest.csv"), items)
    with open(os.path.join(folder, "config.yaml"), "w") as f:
        f.write(cfg.dump())
    _write_json(meta_path, {**wanted, "complete": False})
    n = len(records)
    shards = [(k, s, min(n, s + shard_size)) for k, s in enumerate(range(0, n, shard_size))]
    todo = [sh for sh in shards if not os.path.isfile(_shard_path(folder, sh[0]))]
    if len(todo) < len(shards):
        logger.info("Resuming the index in %s: %d of %d shards are done", folder,
                    len(shards) - len(todo), len(shards))
    start = time.perf_counter()
    dim = None
    with progress(total=n, desc="indexing", unit="item") as bar:
        bar.update(sum(e - s for k, s, e in shards) - sum(e - s for k, s, e in todo))
        for k, s, e in todo:
            feats = extract_items(model, cfg, items[s:e], batch_size, show_progress=False)
            tmp = _shard_path(folder, k) + ".tmp.npy"
            np.save(tmp, feats.astype(np.float32))
            os.replace(tmp, _shard_path(folder, k))
            dim = feats.shape[1]
            bar.update(e - s)
    if dim is None:
        dim = int(np.load(_shard_path(folder, 0), mmap_mode="r").shape[1])
    out = np.lib.format.open_memmap(os.path.join(folder, FeatureIndex.FEATURES) + ".tmp.npy",
                                    mode="w+", dtype=np.float32, shape=(n, dim))
    for k, s, e in shards:
        out[s:e] = np.load(_shard_path(folder, k))
    out.flush()
    del out
    os.replace(os.path.join(folder, FeatureIndex.FEATURES) + ".tmp.npy",
               os.path.join(folder, FeatureIndex.FEATURES))
    _write_json(meta_path, {**wanted, "complete": True, "feature_dim": int(dim)})
    shutil.rmtree(os.path.join(folder, "shards"), ignore_errors=True)
    logger.info("Indexed %d items (%d-d features) into %s in %.1fs", n, dim, folder,
                time.perf_counter() - start)
    return FeatureIndex(folder)


# ------------------------------------------------------------------------------ ranking
def topk_stable(dist: np.ndarray, k: int) -> np.ndarray:
    """Column indices of the ``k`` smallest entries of every row, ascending by (distance, column):
    the evaluator's order (ties broken by gallery index). ``k`` >= width: the whole row."""
    b, g = dist.shape
    if k <= 0 or k >= g:
        return np.argsort(dist, axis=1, kind="stable")
    part = np.argpartition(dist, k - 1, axis=1)[:, :k]
    vals = np.take_along_axis(dist, part, 1)
    kth = vals.max(1)
    tied = np.flatnonzero((dist <= kth[:, None]).sum(1) > k)          # a tie straddles the cut
    o1 = np.argsort(part, axis=1, kind="stable")
    part, vals = np.take_along_axis(part, o1, 1), np.take_along_axis(vals, o1, 1)
    o2 = np.argsort(vals, axis=1, kind="stable")
    out = np.take_along_axis(part, o2, 1)
    for r in tied:
        out[r] = np.argsort(dist[r], kind="stable")[:k]
    return out


def aux_terms(cfg, query: Sequence[Sample], gallery: Sequence[Sample], run_dir: str = ""):
    """The evaluator's TOC / SCP / STS terms for query x gallery (None when the config's TEST
    switches are off): built by ``build_test_aux`` and ``ReidEvaluator`` exactly as for an
    evaluation; ``run_dir`` = the training OUTPUT_DIR that holds the estimated STS transit model."""
    from ..evaluation import ReidEvaluator  # noqa: PLC0415

    try:
        from ..auxinfo import build_test_aux  # noqa: PLC0415
    except ImportError:  # pragma: no cover - the older layout
        from ..cluster.aux_info import build_test_aux  # noqa: PLC0415
    if run_dir:
        cfg = cfg.clone()
        cfg.defrost()
        cfg.OUTPUT_DIR = run_dir
        cfg.freeze()
    try:
        kw = build_test_aux(cfg, list(query), list(gallery))
        if not kw:
            return None
        return ReidEvaluator(cfg, list(query), list(gallery), **kw).aux
    except ValueError as e:
        raise AppError(f"auxiliary test terms: {e}") from None


def rank_gallery(qf, gf, cfg, topk: int = 10, rerank: bool = False, aux=None) -> \
        Iterator[Tuple[int, np.ndarray, np.ndarray]]:
    """``(first query, indices [b, k], distances [b, k])`` per block of queries: the evaluator's
    test distance (module docstring), computed in the evaluator's query blocks."""
    from ..evaluation.rank import _CHUNK_BYTES, _feature_chunks  # noqa: PLC0415
    from ..cluster.ann import AnnParams  # noqa: PLC0415
    from ..evaluation.rerank import ReRankedDistance  # noqa: PLC0415

    qf = torch.from_numpy(np.array(qf, dtype=np.float32))          # copies (memory-mapped index)
    gf = torch.from_numpy(np.array(gf, dtype=np.float32))
    t = cfg.TEST
    base = None
    if rerank:
        base = ReRankedDistance(qf, gf, t.RERANK.K1, t.RERANK.K2, t.RERANK.LAMBDA, t.METRIC,
                                t.RERANK.KNN_BACKEND, ann=AnnParams.from_cfg(cfg.CLUSTER.ANN))
    num_q, num_g = qf.shape[0], gf.shape[0]
    chunk = max(1, _CHUNK_BYTES // max(1, 4 * num_g))
    for s in range(0, num_q, chunk):
        e = min(num_q, s + chunk)
        if base is not None:
            d = np.array(base.rows(s, e), dtype=np.float32)
        else:
            _, d = next(_feature_chunks(qf[s:e], gf, t.METRIC, e - s))
            d = np.asarray(d, dtype=np.float32)
        if aux is not None:
            aux.apply(d, s)
        idx = topk_stable(d, topk)
        yield s, idx, np.take_along_axis(d, idx, 1)


def _finite(x: float):
    return float(x) if math.isfinite(x) else None


def search(gallery: FeatureIndex, query_items: Sequence[Sample], qf: np.ndarray, cfg, topk: int = 10,
           rerank: bool = False, aux=None) -> List[dict]:
    """Ranked gallery items per query (the ``queries`` of ``results.json``)."""
    from ..utils.progress import progress  # noqa: PLC0415

    g_items = gallery.items
    out = []
    with progress(total=len(query_items), desc="searching", unit="query") as bar:
        for s, idx, dist in rank_gallery(qf, np.asarray(gallery.features), cfg, topk, rerank, aux):
            for r in range(idx.shape[0]):
                q = query_items[s + r]
                known = q.pid >= 0
                ranked = []
                for rank, (g, d) in enumerate(zip(idx[r].tolist(), dist[r].tolist()), 1):
                    gi = g_items[g]
                    both = known and gi.pid >= 0
                    ranked.append({"rank": rank, "gallery": g, "path": gi.frames[0],
                                   "distance": _finite(d), "pid": gi.pid, "camid": gi.camid,
                                   "match": (gi.pid == q.pid) if both else None,
                                   "junk": bool(both and gi.pid == q.pid and gi.camid == q.camid)})
                out.append({"query": s + r, "frames": list(q.frames), "pid": q.pid,
                            "camid": q.camid, "results": ranked})
            bar.update(idx.shape[0])
    return out


# ------------------------------------------------------------------------------ outputs
def write_results(out_dir: str, queries: List[dict], info: dict, embed: bool = False,
                  html_queries: int = 500) -> Dict[str, str]:
    """``results.json``, ``results.csv`` and ``results.html`` into ``out_dir``."""
    os.makedirs(out_dir, exist_ok=True)
    paths = {k: os.path.join(out_dir, f"results.{k}") for k in ("json", "csv", "html")}
    _write_json(paths["json"], {**info, "queries": queries})
    with open(paths["csv"], "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["query", "query_path", "query_pid", "query_camid", "rank", "gallery",
                    "gallery_path", "gallery_pid", "gallery_camid", "distance", "match", "junk"])
        for q in queries:
            for r in q["results"]:
                w.writerow([q["query"], q["frames"][0], q["pid"], q["camid"], r["rank"], r["gallery"],
                            r["path"], r["pid"], r["camid"],
                            "inf" if r["distance"] is None else f"{r['distance']:.6g}",
                            "" if r["match"] is None else int(r["match"]), int(r["junk"])])
    with open(paths["html"], "w", encoding="utf-8") as f:
        f.write(results_html(out_dir, queries, info, embed, html_queries))
    return paths


def results_html(page_dir: str, queries: List[dict], info: dict, embed: bool = False,
                 max_queries: int = 500) -> str:
    from .html import GREEN, GREY, QUERY_BLUE, RED, esc, img_src, page, rgb  # noqa: PLC0415

    body = ["<table class=\"kv\">"]
    for key in ("gallery_index", "checkpoint", "distance", "num_gallery", "num_queries", "topk"):
        if key in info:
            body.append(f"<tr><th>{esc(key)}</th><td>{esc(info[key])}</td></tr>")
    body.append("</table><p class=\"note\">Borders: blue = query; green = same identity, red = "
                "another identity (both identities known); grey = unknown identity, or junk (same "
                "identity in the same camera, which the evaluator ignores).</p>")
    for q in queries[:max_queries]:
        qcap = f"query {q['query']}<br>pid {q['pid']} cam {q['camid']}"
        cells = [f"<div class=\"cell\"><img src=\"{img_src(q['frames'][0], page_dir, embed)}\" "
                 f"width=\"64\" height=\"128\" loading=\"lazy\" style=\"border-color:{rgb(QUERY_BLUE)}\">"
                 f"{qcap}</div><div class=\"gap\"></div>"]
        for r in q["results"]:
            colour = GREY if r["match"] is None or r["junk"] else (GREEN if r["match"] else RED)
            d = "inf" if r["distance"] is None else f"{r['distance']:.3f}"
            cells.append(f"<div class=\"cell\"><img src=\"{img_src(r['path'], page_dir, embed)}\" "
                         f"width=\"64\" height=\"128\" loading=\"lazy\" "
                         f"style=\"border-color:{rgb(colour)}\" title=\"{esc(r['path'])}\">"
                         f"#{r['rank']} d {d}<br>pid {r['pid']} cam {r['camid']}</div>")
        body.append(f"<h3>query {q['query']}: {esc(os.path.basename(q['frames'][0]))}</h3>"
                    f"<div class=\"row\">{''.join(cells)}</div>")
    if len(queries) > max_queries:
        body.append(f"<p class=\"note\">{len(queries) - max_queries} more queries in results.json / "
                    f"results.csv (--html-queries).</p>")
    return page("unreidusl search results", body)


# ------------------------------------------------------------------------------ command line
def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="unreidusl-search", description=__doc__.splitlines()[0],
                                epilog="Sources: an image, a folder, a list file, dataset:SPLIT or "
                                       "dataset:NAME:SPLIT (docs/use_a_model.md).")
    p.add_argument("--gallery", nargs="+", default=[], metavar="SRC",
                   help="items to index (omit to query an existing --index)")
    p.add_argument("--query", nargs="+", default=[], metavar="SRC",
                   help="query items, or an index folder of them (omit to only index)")
    p.add_argument("--index", default="", metavar="DIR", help="index folder (default OUTPUT/index)")
    p.add_argument("--output", default="output/search", metavar="DIR", help="results folder")
    p.add_argument("--topk", type=int, default=10, help="gallery items per query (0 = all)")
    p.add_argument("--rerank", action="store_true",
                   help="k-reciprocal re-ranking (TEST.RERANK.K1/K2/LAMBDA)")
    p.add_argument("--tracklets", action="store_true",
                   help="a folder's sub-folders of images are tracklets (one item each)")
    p.add_argument("--name-rule", default="",
                   help="parse pid / camera / time from file names: a dataset name (Market1501, "
                        "...) or a regex with groups pid, cam, time")
    p.add_argument("--embed", action="store_true",
                   help="embed thumbnails in results.html instead of linking the images")
    p.add_argument("--html-queries", type=int, default=500, help="queries shown in results.html")
    p.add_argument("--batch-size", type=int, default=0, help="images per batch (TEST.IMS_PER_BATCH)")
    p.add_argument("--shard-size", type=int, default=2048, help="items per resumable index shard")
    p.add_argument("--overwrite", action="store_true", help="rebuild an index of other items")
    add_model_arguments(p)
    return p


def _setup_logging(out_dir: str) -> None:
    from ..utils.logger import setup_logger  # noqa: PLC0415

    setup_logger(out_dir, filename="search.log")


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    split_opts(args, parser)
    if not args.gallery and not args.index:
        parser.error("give --gallery (items to index) and/or --index (an existing index)")
    index_dir = args.index or os.path.join(args.output, "index")
    _setup_logging(args.output)
    try:
        return _run(args, index_dir)
    except AppError as e:
        logger.error("%s", e)
        return 1


def _run(args, index_dir: str) -> int:
    checkpoint = args.checkpoint
    if not checkpoint and not args.config_file and FeatureIndex.is_index(index_dir):
        with open(os.path.join(index_dir, FeatureIndex.META), encoding="utf-8") as f:
            checkpoint = json.load(f).get("checkpoint", "")
        if checkpoint:
            logger.info("Using the index's checkpoint %s", checkpoint)
    cfg, model, _ = load_trained(checkpoint, args.config_file, args.opts)
    fingerprint = checkpoint_fingerprint(checkpoint)
    if args.gallery:
        items = collect_items(args.gallery, cfg, args.tracklets, args.name_rule)
        gallery = build_index(index_dir, model, cfg, items, checkpoint, fingerprint,
                              args.batch_size or None, args.shard_size, args.overwrite)
    else:
        gallery = FeatureIndex(index_dir)
    if gallery.meta.get("checkpoint_sha256") != fingerprint:
        raise AppError(f"the index {index_dir} was built with another checkpoint "
                       f"({gallery.meta.get('checkpoint') or 'random weights'}); query it with that one "
                       f"or rebuild it (--overwrite)")
    if not args.query:
        logger.info("Index ready: %s (%d items)", index_dir, len(gallery))
        return 0
    if len(args.query) == 1 and os.path.isdir(args.query[0]) and FeatureIndex.is_index(args.query[0]):
        q_index = FeatureIndex(args.query[0])
        if q_index.meta.get("checkpoint_sha256") != fingerprint:
            raise AppError(f"the query index {args.query[0]} was built with another checkpoint")
        query_items, qf = q_index.items, np.asarray(q_index.features)
    else:
        query_items = collect_items(args.query, cfg, args.tracklets, args.name_rule)
        qf = extract_items(model, cfg, query_items, args.batch_size or None)
    run_dir = os.path.dirname(os.path.abspath(checkpoint)) if checkpoint else ""
    aux = aux_terms(cfg, query_items, gallery.items, run_dir)
    parts = [cfg.TEST.METRIC] + (["rerank"] if args.rerank else []) + (aux.active if aux else [])
    start = time.perf_counter()
    queries = search(gallery, query_items, qf, cfg, args.topk, args.rerank, aux)
    info = {"gallery_index": os.path.abspath(index_dir), "checkpoint": checkpoint,
            "distance": "+".join(parts), "num_gallery": len(gallery), "num_queries": len(queries),
            "topk": args.topk if args.topk > 0 else len(gallery)}
    paths = write_results(args.output, queries, info, args.embed, args.html_queries)
    logger.info("Answered %d queries against %d gallery items (%s) in %.1fs: %s", len(queries),
                len(gallery), info["distance"], time.perf_counter() - start,
                ", ".join(os.path.abspath(p) for p in paths.values()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
