"""unreidusl-search (tools/search.py): index + query on the tiny synthetic Market twin; the mAP
computed from its results equals the evaluator's; re-ranking and the auxiliary terms rank as the
evaluator does; the index is resumable; the HTML page opens without a server."""
import json
import os

import numpy as np
import pytest

from unreidusl.apps.common import collect_items, load_trained
from unreidusl.apps.html import images_in_html
from unreidusl.apps.search import FeatureIndex, build_index, topk_stable

from helpers import load_tool


def results_map(results):
    """mAP (%) of results.json with all gallery items ranked: the evaluator's protocol (junk = same
    pid in the same camera, removed; queries without a true match skipped)."""
    aps = []
    for q in results["queries"]:
        valid = [r for r in q["results"] if not r["junk"]]
        hits = np.array([r["match"] for r in valid], bool)
        if hits.any():
            ranks = np.flatnonzero(hits) + 1
            aps.append(np.mean(np.arange(1, ranks.size + 1) / ranks))
    return 100 * float(np.mean(aps))


def last_test_map(run_dir):
    records = [json.loads(line) for line in open(os.path.join(run_dir, "metrics.json"))]
    return [r["test/mAP"] for r in records if "test/mAP" in r][-1]


def run_search(trained_run, out, *extra):
    search = load_tool("search")
    return search.main(["--checkpoint", trained_run["checkpoints"][1], "--gallery", "dataset:gallery",
                        "--query", "dataset:query", "--topk", "0", "--output", str(out), *extra])


@pytest.fixture(scope="module")
def searched(trained_run, tmp_path_factory):
    out = tmp_path_factory.mktemp("search")
    assert run_search(trained_run, out) == 0
    with open(out / "results.json") as f:
        return out, json.load(f)


def test_search_answers_every_query_with_the_evaluators_map(trained_run, searched):
    out, results = searched
    cfg, _, _ = load_trained(trained_run["checkpoints"][1])
    query = collect_items(["dataset:query"], cfg)
    gallery = collect_items(["dataset:gallery"], cfg)
    assert results["num_queries"] == len(query) == len(results["queries"])
    for q, item in zip(results["queries"], query):
        assert q["frames"] == [os.path.abspath(f) for f in item.frames] and q["pid"] == item.pid
        assert [r["rank"] for r in q["results"]] == list(range(1, len(gallery) + 1))
        d = np.array([r["distance"] for r in q["results"]])
        assert np.all(np.diff(d) >= 0)                                   # ascending
        assert sorted(r["gallery"] for r in q["results"]) == list(range(len(gallery)))
        for r in q["results"]:
            g = gallery[r["gallery"]]
            assert r["junk"] == (g.pid == item.pid and g.camid == item.camid)
    # the same model, the same protocol: the evaluator's mAP after the last epoch
    assert results_map(results) == pytest.approx(last_test_map(trained_run["dir"]), abs=1e-6)
    index = FeatureIndex(str(out / "index"))
    assert index.meta["complete"] and index.features.shape[0] == len(gallery)
    assert index.meta["input"]["input_size_hw"] == [64, 32]
    assert (out / "results.csv").read_text().count("\n") == 1 + len(query) * len(gallery)


def test_results_html_opens_without_a_server(searched, trained_run, tmp_path):
    out, results = searched
    html = (out / "results.html").read_text()
    srcs = images_in_html(html)
    assert len(srcs) == sum(1 + len(q["results"]) for q in results["queries"])
    for src in srcs:                          # relative links that resolve from the page's folder
        assert not os.path.isabs(src) and "://" not in src
        assert os.path.isfile(os.path.join(out, src)), src
    assert "border-color:#00aa00" in html and "border-color:#dc0000" in html   # green and red
    # embedded thumbnails: one self-contained file; the index is reused, not rebuilt
    assert run_search(trained_run, tmp_path, "--embed", "--topk", "3", "--index",
                      str(out / "index")) == 0
    srcs = images_in_html((tmp_path / "results.html").read_text())
    assert srcs and all(s.startswith("data:image/jpeg;base64,") for s in srcs)
    assert len(srcs) == 4 * results["num_queries"]


@pytest.mark.parametrize("opts", [["TEST.RERANK.ENABLED", "True"],
                                  ["TEST.TOC.ENABLED", "True", "TEST.SCP.ENABLED", "True"]],
                         ids=["rerank", "toc+scp"])
def test_rerank_and_aux_terms_rank_as_the_evaluator(trained_run, searched, tmp_path, opts):
    from unreidusl.evaluation import ReidEvaluator

    out, _ = searched
    flag = ["--rerank"] if "TEST.RERANK.ENABLED" in opts else []
    extra = [] if flag else opts
    assert run_search(trained_run, tmp_path, "--index", str(out / "index"), *flag, *extra) == 0
    with open(tmp_path / "results.json") as f:
        results = json.load(f)
    assert ("rerank" in results["distance"]) == bool(flag)
    assert ("TOC" in results["distance"]) == (not flag)
    cfg, model, _ = load_trained(trained_run["checkpoints"][1], "", opts)
    query, gallery = collect_items(["dataset:query"], cfg), collect_items(["dataset:gallery"], cfg)
    from unreidusl.apps.search import extract_items
    from unreidusl.auxinfo import build_test_aux

    qf, gf = extract_items(model, cfg, query), np.asarray(FeatureIndex(str(out / "index")).features)
    evaluator = ReidEvaluator(cfg, query, gallery, **build_test_aux(cfg, query, gallery))
    expected = evaluator.evaluate_features(qf, gf)["mAP"]
    assert results_map(results) == pytest.approx(expected, abs=1e-6)
    assert results_map(results) != pytest.approx(last_test_map(trained_run["dir"]), abs=1e-3)


def test_index_resumes_after_an_interruption(trained_run, tmp_path, monkeypatch):
    import unreidusl.apps.search as search

    cfg, model, _ = load_trained(trained_run["checkpoints"][1])
    items = collect_items(["dataset:gallery"], cfg)
    calls = []
    real = search.extract_items

    def flaky(model, cfg, shard, *args, **kwargs):
        calls.append(len(shard))
        if len(calls) == 3:
            raise KeyboardInterrupt("killed while indexing")
        return real(model, cfg, shard, *args, **kwargs)

    monkeypatch.setattr(search, "extract_items", flaky)
    folder = str(tmp_path / "index")
    with pytest.raises(KeyboardInterrupt):
        build_index(folder, model, cfg, items, trained_run["checkpoints"][1], shard_size=32)
    assert sorted(os.listdir(os.path.join(folder, "shards"))) == ["part_00000.npy", "part_00001.npy"]
    calls.clear()
    index = build_index(folder, model, cfg, items, trained_run["checkpoints"][1], shard_size=32)
    shards = -(-len(items) // 32)
    assert len(calls) == shards - 2                       # only the missing shards were extracted
    whole = real(model, cfg, items)
    np.testing.assert_allclose(np.asarray(index.features), whole, atol=1e-5)
    calls.clear()
    build_index(folder, model, cfg, items, trained_run["checkpoints"][1], shard_size=32)
    assert calls == []                                    # complete: reused as it is
    with pytest.raises(Exception, match="other items"):
        build_index(folder, model, cfg, items[:10], trained_run["checkpoints"][1], shard_size=32)


def test_topk_stable_breaks_ties_by_gallery_index():
    rng = np.random.default_rng(0)
    d = rng.integers(0, 5, size=(40, 30)).astype(np.float32)        # many exact ties
    for k in (1, 3, 7, 30, 0):
        got = topk_stable(d, k)
        width = d.shape[1] if k in (0, 30) else k
        ref = np.stack([np.lexsort((np.arange(30), row))[:width] for row in d])
        np.testing.assert_array_equal(got, ref)
