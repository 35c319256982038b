"""tools/compare_methods.py: one budget forced on every method, and the table it writes."""
import json

import pytest

from helpers import load_tool, tiny_opts

compare = load_tool("compare_methods")


def test_budget_is_the_reference_configs_training_budget():
    budget = compare.budget_overrides()
    assert budget["SOLVER.MAX_EPOCHS"] == 10 and budget["SOLVER.ITERS_PER_EPOCH"] == 30
    assert budget["SOLVER.IMS_PER_BATCH"] == 64 and budget["MODEL.BACKBONE.DEPTH"] == 18
    assert budget["INPUT.SIZE_TRAIN"] == [64, 32]


def test_unknown_method_is_refused():
    with pytest.raises(SystemExit, match="unknown methods"):
        compare.main(["--methods", "cluster_contrast,magic"])


@pytest.mark.slow
def test_table_for_one_method_on_the_tiny_world(tiny_root, tmp_path):
    out = tmp_path / "cmp"
    # overrides after the budget: shrink it to a seconds-long run
    opts = tiny_opts(tiny_root, tmp_path / "ignored", **{"TEST.EVAL_AT_START": True})
    assert compare.main(["--methods", "cluster_contrast", "--output-dir", str(out)] + opts) == 0
    table = (out / "methods.md").read_text()
    assert "Cluster Contrast" in table and "82.1 (92.3)" in table and "SOLVER.MAX_EPOCHS 10" in table
    res = json.loads((out / "methods.json").read_text())["cluster_contrast"]
    assert 0 <= res["initial mAP"] <= 100 and 0 <= res["mAP"] <= 100 and res["minutes"] > 0
    assert (out / "cluster_contrast" / "model_final.pth").is_file()
