"""Rank-list pictures (Pillow compositions) and the CMC curve (matplotlib, ``utils/charts.py``).

Rank list of query q: the query image, then its ``topk`` nearest *valid* gallery items, sorted by
``(distance, gallery index)`` as the rank evaluator does.  Valid = not junk, where junk is
``pid_g == pid_q and cam_g == cam_q`` (nothing is junk in camera-free mode).  Borders: green for a
true match (``pid_g == pid_q``), red otherwise; the query has a blue border.

CMC curve: ``cmc[k - 1]`` = fraction of valid queries whose first true match has rank <= k.
"""
import logging
import os

import numpy as np
from PIL import Image, ImageDraw, ImageFont

__all__ = ["GREEN", "RED", "QUERY_BLUE", "draw_cmc", "draw_rank_list", "layout_boxes",
           "rank_list", "select_queries", "visualize_ranking"]

logger = logging.getLogger(__name__)

GREEN, RED, QUERY_BLUE = (0, 170, 0), (220, 0, 0), (30, 90, 220)
CELL = (64, 128)          # (width, height) of one image cell, border included
BORDER = 4
_PAD, _GAP, _QGAP, _TOP, _BOTTOM = 8, 6, 18, 34, 30


def rank_list(dist_row, q_pid, q_cam, g_pids, g_cams, topk=10, camera_free=False):
    """``(gallery indices, is_match)`` of the ``topk`` nearest valid gallery items of one query."""
    dist_row = np.asarray(dist_row, dtype=np.float64).reshape(-1)
    g_pids, g_cams = np.asarray(g_pids), np.asarray(g_cams)
    valid = np.ones(dist_row.shape[0], bool)
    if not camera_free:
        valid &= ~((g_pids == q_pid) & (g_cams == q_cam))
    idx = np.flatnonzero(valid)
    order = idx[np.argsort(dist_row[idx], kind="stable")[:topk]]
    return order, g_pids[order] == q_pid


def select_queries(q_pids, g_pids, q_cams, g_cams, num, camera_free=False):
    """``num`` query indices spread evenly over the queries that have a true match."""
    q_pids, g_pids = np.asarray(q_pids), np.asarray(g_pids)
    q_cams, g_cams = np.asarray(q_cams), np.asarray(g_cams)
    has_pos = np.zeros(q_pids.shape[0], bool)
    for i, (p, c) in enumerate(zip(q_pids, q_cams)):
        same = g_pids == p
        has_pos[i] = bool(same.any() if camera_free else (same & (g_cams != c)).any())
    cand = np.flatnonzero(has_pos)
    if num <= 0 or cand.size == 0:
        return np.zeros(0, np.int64)
    if num >= cand.size:
        return cand
    return cand[np.unique(np.linspace(0, cand.size - 1, num).round().astype(np.int64))]


def layout_boxes(num_gallery, cell=CELL):
    """Canvas size and the border boxes ``(x0, y0, x1, y1)`` (inclusive) of [query] + gallery."""
    w, h = cell
    boxes, x = [], _PAD
    for i in range(num_gallery + 1):
        boxes.append((x, _TOP, x + w - 1, _TOP + h - 1))
        x += w + (_QGAP if i == 0 else _GAP)
    return (x - _GAP + _PAD, _TOP + h + _BOTTOM), boxes


def _font():
    try:
        return ImageFont.load_default()
    except Exception:  # pragma: no cover - very old Pillow
        return None


def _load(path, size):
    """The image resized to ``size``, or a grey placeholder when it cannot be read."""
    try:
        with Image.open(path) as img:
            return img.convert("RGB").resize(size)
    except (OSError, ValueError, TypeError):
        return Image.new("RGB", size, (150, 150, 150))


def _cell(canvas, draw, box, path, colour):
    x0, y0, x1, y1 = box
    draw.rectangle(box, fill=colour)
    inner = (x1 - x0 + 1 - 2 * BORDER, y1 - y0 + 1 - 2 * BORDER)
    canvas.paste(_load(path, inner), (x0 + BORDER, y0 + BORDER))


def draw_rank_list(query_path, gallery_paths, matches, path, captions=None, title="", cell=CELL):
    """Write the rank-list PNG ``path``: query cell, then one cell per gallery item."""
    size, boxes = layout_boxes(len(gallery_paths), cell)
    canvas = Image.new("RGB", size, (255, 255, 255))
    draw, font = ImageDraw.Draw(canvas), _font()
    _cell(canvas, draw, boxes[0], query_path, QUERY_BLUE)
    for box, gpath, ok in zip(boxes[1:], gallery_paths, matches):
        _cell(canvas, draw, box, gpath, GREEN if ok else RED)
    captions = captions or []
    for i, box in enumerate(boxes):
        label = "query" if i == 0 else f"#{i}"
        draw.text((box[0] + 2, _TOP - 15), label, fill=(0, 0, 0), font=font)
        for line, text in enumerate((captions[i] if i < len(captions) else "").split("\n")[:2]):
            draw.text((box[0], box[3] + 3 + 12 * line), text, fill=(0, 0, 0), font=font)
    if title:
        draw.text((_PAD, 3), title, fill=(0, 0, 0), font=font)
    canvas.save(path)
    return path


def draw_cmc(cmc, path, title="CMC"):
    """Write the CMC-curve PNG (matplotlib, Agg canvas): matching rate (%) against rank."""
    from ..utils.charts import figure, save  # noqa: PLC0415 - matplotlib only when drawing

    cmc = np.asarray(cmc, dtype=np.float64).reshape(-1)
    if cmc.size == 0:
        raise ValueError("empty CMC curve")
    fig = figure(5.0, 3.6)
    ax = fig.add_subplot(1, 1, 1)
    ranks = np.arange(1, len(cmc) + 1)
    ax.plot(ranks, 100 * cmc, color=tuple(c / 255 for c in QUERY_BLUE), lw=2,
            marker="o" if len(cmc) == 1 else None)
    for r in (1, 5, 10):
        if r <= len(cmc):
            ax.annotate(f"R{r} {100 * cmc[r - 1]:.1f}%", (r, 100 * cmc[r - 1]), fontsize=8,
                        xytext=(4, -12), textcoords="offset points")
    ax.set(xlabel="rank", ylabel="matching rate (%)", title=title, ylim=(0, 101),
           xlim=(1, max(2, len(cmc))))
    ax.grid(alpha=0.3)
    save(fig, path)
    return path


def visualize_ranking(dist, query, gallery, cmc, out_dir, num_queries=8, topk=10,
                      camera_free=False, query_indices=None, title=""):
    """Write ``ranklist_q<index>.png`` per chosen query and ``cmc.png`` into ``out_dir``.

    Args:
        dist: Q x G distances: an array or a lazy matrix with row slicing ``dist[s:e]``
            (``ChunkedDistance``, ``ReRankedDistance``); only the chosen rows are computed.
        query, gallery: ``Sample`` lists (``frames[0]`` is drawn, ``pid``/``camid`` decide colours).
        cmc: the CMC curve; num_queries / query_indices: which queries (default: spread evenly).

    Returns:
        The list of written paths (rank lists first, the CMC curve last).
    """
    os.makedirs(out_dir, exist_ok=True)
    q_pids, q_cams = np.array([s.pid for s in query]), np.array([s.camid for s in query])
    g_pids, g_cams = np.array([s.pid for s in gallery]), np.array([s.camid for s in gallery])
    if query_indices is None:
        query_indices = select_queries(q_pids, g_pids, q_cams, g_cams, num_queries, camera_free)
    written = []
    for qi in (int(i) for i in query_indices):
        row = np.asarray(dist[qi:qi + 1]).reshape(-1)
        order, match = rank_list(row, q_pids[qi], q_cams[qi], g_pids, g_cams, topk, camera_free)
        caps = [f"pid {q_pids[qi]}\ncam {q_cams[qi]}"]
        caps += [f"pid {g_pids[g]} c{g_cams[g]}\nd {row[g]:.3f}" for g in order]
        path = os.path.join(out_dir, f"ranklist_q{qi:05d}.png")
        draw_rank_list(query[qi].frames[0], [gallery[g].frames[0] for g in order], match, path,
                       caps, title=f"query {qi}  {int(match.sum())}/{len(match)} true matches")
        written.append(path)
    written.append(draw_cmc(cmc, os.path.join(out_dir, "cmc.png"), title or "CMC"))
    logger.info("Wrote %d rank lists and the CMC curve to %s", len(written) - 1, out_dir)
    return written
