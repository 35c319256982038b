"""Rank-list / CMC pictures: files written, border colours right, junk excluded."""
import os

import numpy as np
import pytest
from PIL import Image

from unreidusl.data import Sample
from unreidusl.evaluation.visualize import (GREEN, QUERY_BLUE, RED, draw_cmc, layout_boxes,
                                            rank_list, select_queries, visualize_ranking)

from helpers import load_tool, tiny_opts

FILL = [(10, 10, 10 + 20 * i) for i in range(8)]       # one solid colour per image


@pytest.fixture()
def fake(tmp_path):
    """Query 0 (pid 1, cam 0), query 1 (pid 9: no match); gallery of 5 with hand-set distances."""
    paths = []
    for i, colour in enumerate(FILL):
        p = tmp_path / f"img{i}.png"
        Image.new("RGB", (32, 64), colour).save(p)
        paths.append(str(p))
    query = [Sample((paths[0],), 1, 0), Sample((paths[1],), 9, 0)]
    # g0 junk (same pid, same cam), g1 false, g2 true, g3 false, g4 true
    gallery = [Sample((paths[2 + j],), pid, cam)
               for j, (pid, cam) in enumerate([(1, 0), (2, 1), (1, 1), (3, 0), (1, 2)])]
    dist = np.array([[0.05, 0.1, 0.2, 0.3, 0.4],
                     [0.5, 0.4, 0.3, 0.2, 0.1]])
    return query, gallery, dist


def border_and_inner(img, box):
    x0, y0, x1, y1 = box
    return img.getpixel((x0 + 1, y0 + 1)), img.getpixel(((x0 + x1) // 2, (y0 + y1) // 2))


def test_rank_list_excludes_junk(fake):
    query, gallery, dist = fake
    g_pids, g_cams = [s.pid for s in gallery], [s.camid for s in gallery]
    order, match = rank_list(dist[0], 1, 0, g_pids, g_cams, topk=10)
    assert order.tolist() == [1, 2, 3, 4] and match.tolist() == [False, True, False, True]
    order, match = rank_list(dist[0], 1, 0, g_pids, g_cams, topk=2, camera_free=True)
    assert order.tolist() == [0, 1] and match.tolist() == [True, False]
    assert select_queries([1, 9], g_pids, [0, 0], g_cams, 8).tolist() == [0]


def test_pictures_written_with_right_borders(fake, tmp_path):
    query, gallery, dist = fake
    out = tmp_path / "vis"
    files = visualize_ranking(dist, query, gallery, [0.0, 1.0, 1.0], str(out), num_queries=8)
    assert [os.path.basename(f) for f in files] == ["ranklist_q00000.png", "cmc.png"]
    assert all(os.path.getsize(f) > 0 for f in files)
    img = Image.open(files[0]).convert("RGB")
    size, boxes = layout_boxes(4)
    assert img.size == size
    border, inner = border_and_inner(img, boxes[0])
    assert border == QUERY_BLUE and inner == FILL[0]
    expected = [(RED, 1), (GREEN, 2), (RED, 3), (GREEN, 4)]      # junk g0 is not drawn
    for box, (colour, g) in zip(boxes[1:], expected):
        border, inner = border_and_inner(img, box)
        assert border == colour and inner == FILL[2 + g]
    cmc = Image.open(files[1]).convert("RGB")
    assert cmc.size[0] >= 300 and QUERY_BLUE in {c for _, c in cmc.getcolors(1 << 16)}


def _blue_pixels(path):
    """Pixels of the curve's colour (QUERY_BLUE, up to antialiasing) in the PNG."""
    arr = np.asarray(Image.open(path).convert("RGB")).astype(int)
    return int((np.abs(arr - np.array(QUERY_BLUE)).sum(-1) < 30).sum())


def test_cmc_matplotlib_and_missing_image(fake, tmp_path):
    query, gallery, dist = fake
    path = draw_cmc(np.linspace(0.5, 1.0, 50), str(tmp_path / "c.png"))
    with Image.open(path) as im:
        assert im.format == "PNG" and im.size == (500, 360)       # 5 x 3.6 inches at 100 dpi
    # the curve is drawn: a rising curve has many more curve-coloured pixels than a flat one at 100%
    assert _blue_pixels(path) > 200
    draw_cmc([0.7], str(tmp_path / "one.png"))                        # one-point curve: a marker
    assert _blue_pixels(str(tmp_path / "one.png")) > 10
    with pytest.raises(ValueError, match="empty"):
        draw_cmc([], str(tmp_path / "none.png"))
    gallery[1] = Sample(("/does/not/exist.jpg",), 2, 1)                     # grey placeholder
    files = visualize_ranking(dist, query, gallery, [1.0], str(tmp_path / "v"),
                              query_indices=[0], topk=2)
    img = Image.open(files[0]).convert("RGB")
    _, boxes = layout_boxes(2)
    border, inner = border_and_inner(img, boxes[1])
    assert border == RED and inner == (150, 150, 150)


def test_evaluator_writes_pictures(fake, tmp_path):
    from unreidusl.config import get_cfg
    from unreidusl.evaluation import ReidEvaluator

    query, gallery, _ = fake
    cfg = get_cfg()
    cfg.merge_from_list(["TEST.VISUALIZE.ENABLED", "True", "TEST.VISUALIZE.NUM_QUERIES", "3",
                         "OUTPUT_DIR", str(tmp_path / "out"), "DATALOADER.NUM_WORKERS", "0"])
    rng = np.random.default_rng(0)
    qf, gf = rng.normal(size=(2, 4)).astype(np.float32), rng.normal(size=(5, 4)).astype(np.float32)
    ReidEvaluator(cfg, query, gallery).evaluate_features(qf, gf)
    assert sorted(os.listdir(tmp_path / "out" / "visualize")) == ["cmc.png", "ranklist_q00000.png"]


def test_tool_end_to_end(tiny_root, tmp_path):
    tool = load_tool("visualize")
    out = tmp_path / "tool"
    opts = tiny_opts(tiny_root, out)
    args = tool.parse_args(["--config-file", ""] + opts[:2] + ["--num-queries", "2"] + opts[2:])
    assert args.num_queries == 2 and "--num-queries" not in args.opts
    assert tool.main(opts + ["--num-queries", "2"]) == 0
    names = sorted(os.listdir(out / "visualize"))
    assert len(names) == 3 and names[0] == "cmc.png"
