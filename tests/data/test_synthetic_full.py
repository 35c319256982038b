"""The full-size synthetic presets (the real datasets' counts, exactly) and the count-matching step.

The full-size worlds are checked at metadata level: ``plan_synthetic`` builds the world and the
writer's plan (every file name, the meta records, the side files) without rendering an image, a few
seconds each.  The count-matching step itself is generated end to end on the tiny preset."""
import json
from collections import defaultdict

import pytest

from unreidusl.config import get_cfg
from unreidusl.data.datasets import DATASET_REGISTRY
from unreidusl.data.synthetic import (FULL_PRESET_FORMATS, PRESETS, make_synthetic, plan_counts,
                                      plan_synthetic, resolve_config)
from unreidusl.data.synthetic.api import MARKER
from unreidusl.data.synthetic.counts import CountMatchError

# (ids, samples) per split as the dataset readers load them (junk dropped; pid 0 not an identity)
REAL = {
    "market-full": {"train": (751, 12936), "query": (750, 3368), "gallery": (750, 15913)},
    "msmt17-full": {"train": (1041, 32621), "query": (3060, 11659), "gallery": (3060, 82161)},
    "mars-full": {"train": (625, 8298), "query": (636, 1980), "gallery": (636, 9330)},
    # DukeMTMC-VideoReID's gallery also holds its 408 gallery-only identities: 702 + 408 = 1,110
    "duke-video-full": {"train": (702, 2196), "query": (702, 702), "gallery": (1110, 2636)},
}


@pytest.fixture(scope="module")
def full_plans():
    """The seed-0 plan of every full-size preset; rendering is forbidden while they are built."""
    from unreidusl.data.synthetic import render

    def no_rendering(*args, **kwargs):
        raise AssertionError("a metadata-level check must not render images")

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(render.Renderer, "render", no_rendering)
        mp.setattr(render.Renderer, "encode", no_rendering)
        return {p: plan_synthetic(FULL_PRESET_FORMATS[p], 0, p) for p in REAL}


@pytest.mark.parametrize("preset", sorted(REAL))
def test_full_preset_matches_real_counts(full_plans, preset):
    plan = full_plans[preset]
    counts = plan_counts(plan)
    got = {split: (counts[split]["ids"], counts[split]["samples"]) for split in ("train", "query", "gallery")}
    assert got == REAL[preset]
    cfg = plan.world.cfg
    assert (cfg.num_train_ids, cfg.exact_counts) == (REAL[preset]["train"][0],
                                                    tuple(n for _, n in REAL[preset].values()))
    assert cfg.image_size == (64, 32)  # reduced image size by default
    assert plan.video == (preset in ("mars-full", "duke-video-full"))
    assert [t.tid for t in plan.world.tracklets] == list(range(len(plan.world.tracklets)))


@pytest.mark.parametrize("preset", sorted(REAL))
def test_full_preset_structure(full_plans, preset):
    """Matched counts keep the layouts' rules: unique files, every identity in one place at a time,
    every query with a positive from another camera in the gallery."""
    plan = full_plans[preset]
    world = plan.world
    files = [f for rec in plan.records for f in rec["files"]]
    assert len(files) == len(set(files)) == plan.num_images()
    by_uid = defaultdict(list)
    for t in world.tracklets:
        if t.kind == "normal":
            by_uid[t.uid].append(t)
    for trks in by_uid.values():
        trks.sort(key=lambda t: t.start)
        assert all(a.end < b.start for a, b in zip(trks, trks[1:]))
    gallery_cams = defaultdict(set)
    for rec in plan.records:
        if rec["split"] == "gallery" and rec["pid"] > 0:
            gallery_cams[rec["pid"]].add(rec["camera"])
    queries = [rec for rec in plan.records if rec["split"] == "query"]
    assert queries and all(gallery_cams[q["pid"]] - {q["camera"]} for q in queries)


def test_full_presets_are_bound_to_their_format(tmp_path):
    assert set(FULL_PRESET_FORMATS) <= set(PRESETS)
    with pytest.raises(ValueError, match="market1501"):
        make_synthetic(root=tmp_path, fmt="msmt17", preset="market-full")
    with pytest.raises(ValueError, match="market1501"):
        plan_synthetic("dukemtmcreid", 0, "market-full")
    with pytest.raises(ValueError, match="vehicle"):
        resolve_config("market-full", "vehicle")
    assert not list(tmp_path.iterdir())
    # the dataset twin names the preset like any other
    cfg = get_cfg()
    cfg.DATASETS.SYNTHETIC.PRESET = "mars-full"
    from unreidusl.data.datasets.synthetic import synthetic_root
    assert synthetic_root(cfg, "datasets").endswith("mars-full-seed0")


def test_existing_presets_are_unchanged():
    """tiny / small / medium carry no exact counts: their config (hence marker and meta) has no new
    key, and their sizes are still the documented ones (docs/synthetic_world.md, seed 0)."""
    for preset in ("tiny", "small", "medium"):
        cfg = resolve_config(preset, "person")
        assert cfg.exact_counts == () and "exact_counts" not in cfg.to_dict()

    small = plan_counts(plan_synthetic("market1501", 0, "small"))
    assert (small["train"]["ids"], small["train"]["tracklets"], small["train"]["images"]) == (120, 451, 2046)
    assert (small["query"]["ids"], small["query"]["images"]) == (120, 362)
    # the README's main job: 2,165 gallery images once the reader drops the 90 junk images
    assert (small["gallery"]["images"], small["gallery"]["junk"], small["gallery"]["distractors"]) == (2165, 90, 368)
    tiny = plan_counts(plan_synthetic("dukemtmc-videoreid", 0, "tiny"))
    assert [(tiny[s]["ids"], tiny[s]["samples"], tiny[s]["images"]) for s in ("train", "query", "gallery")] == \
        [(12, 46, 382), (12, 12, 97), (16, 44, 369)]


def test_exact_counts_override_end_to_end(tmp_path):
    """The count-matching step on the tiny world: generated, loaded by the readers, exact; and
    recorded in the marker (a world without it keeps the old marker)."""
    cfg = get_cfg()
    for fmt, reader, counts in (("market1501", "Market1501", (100, 30, 140)),
                                ("dukemtmc-videoreid", "DukeMTMCVideoReID", (50, 12, 40)),
                                ("mars", "MARS", (40, 20, 50))):
        path = make_synthetic(root=tmp_path, fmt=fmt, seed=0, preset="tiny", exact_counts=list(counts))
        marker = json.loads((path / MARKER).read_text())
        assert marker["config"]["exact_counts"] == list(counts)
        assert marker["overrides"] == {"exact_counts": list(counts)}
        ds = DATASET_REGISTRY.get(reader)(str(tmp_path), cfg)
        assert (len(ds.train), len(ds.query), len(ds.gallery)) == counts, fmt
        assert len({s.pid for s in ds.train}) == 12 and len({s.pid for s in ds.query}) == 12
    plain = make_synthetic(root=tmp_path / "plain", fmt="market1501", seed=0, preset="tiny")
    assert "exact_counts" not in json.loads((plain / MARKER).read_text())["config"]


def test_exact_counts_that_cannot_be_met_are_refused():
    with pytest.raises(CountMatchError, match="queries"):
        plan_synthetic("market1501", 0, "tiny", exact_counts=[100, 5, 140])  # < one per test id
    with pytest.raises(ValueError, match="num_test_ids"):
        plan_synthetic("dukemtmc-videoreid", 0, "tiny", exact_counts=[50, 20, 40])
    with pytest.raises(ValueError, match="exact_counts"):
        resolve_config("tiny", "person", {"exact_counts": [1, 2]})
