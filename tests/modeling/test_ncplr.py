"""NCPLR / GL-NCPLR: part pooling, the mixed Jaccard distance,
neighbour ensembles, the global↔local exchange, the model and its configs."""
import math
import os

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from unreidusl.cluster import build_distance
from unreidusl.cluster.jaccard import jaccard_distance
from unreidusl.config import get_cfg
from unreidusl.engine import DefaultTrainer
from unreidusl.engine.defaults import setup_cfg
from unreidusl.modeling import build_model
from unreidusl.modeling.layers import PartPooling
from unreidusl.modeling.losses.refined_labels import exchange_labels, first_draws, neighbor_ensemble, \
    neighbor_graph, refined_targets
from unreidusl.cluster import ClusterResult

from helpers import ROOT, tiny_opts

# Distances among M = 3 samples; with eps = 0.2 the neighbour sets are 0:{0,1}, 1:{0,1,2}, 2:{1,2}.
D3 = np.array([[0.0, 0.1, 0.5],
               [0.1, 0.0, 0.2],
               [0.5, 0.2, 0.0]], dtype=np.float32)


def _graph(dist=D3, keep=(0, 1, 2), eps=0.2):
    return neighbor_graph(dist, np.array(keep), eps)


def test_part_pooling_splits_rows_evenly():
    # map [1, 1, 4, 1] with rows 1, 2, 3, 4 and avg pooling: parts = mean(1, 2), mean(3, 4) = 1.5, 3.5;
    # with 3 parts the bounds are ⌊k·4/3⌋ = 0, 1, 2, 4: parts 1, 2, mean(3, 4) = 3.5
    x = torch.arange(1.0, 5.0).view(1, 1, 4, 1)
    assert PartPooling(2, "avg")(x).flatten().tolist() == [1.5, 3.5]
    assert PartPooling(3, "avg")(x).flatten().tolist() == [1.0, 2.0, 3.5]
    with pytest.raises(ValueError, match="NUM_PARTS"):
        PartPooling(5, "avg")(x)


def test_neighbor_graph_sparse_and_dense_agree():
    indptr, indices, dist = _graph()
    assert indptr.tolist() == [0, 2, 5, 7]
    assert indices.tolist() == [0, 1, 0, 1, 2, 1, 2]
    assert dist.tolist() == pytest.approx([0, 0.1, 0.1, 0, 0.2, 0.2, 0])
    # sparse input: unstored = 1; the diagonal is added even when not stored; keep = samples 2 and 1
    sparse = sp.csr_matrix(np.where(np.eye(3) > 0, 0, D3))          # diagonal not stored
    indptr, indices, dist = neighbor_graph(sparse, np.array([2, 1]), 0.2)
    assert indptr.tolist() == [0, 2, 4] and indices.tolist() == [0, 1, 0, 1]
    assert dist.tolist() == pytest.approx([0, 0.2, 0.2, 0])


def test_neighbor_ensemble_uniform_dataset_and_batch_scope():
    graph = _graph()
    bank = torch.tensor([[1.0, 0.0], [0.5, 0.5], [0.0, 1.0]])
    index = torch.tensor([0, 2])
    # dataset scope, mean over N(0) = {0, 1}: ([1,0] + [.5,.5])/2 = [.75,.25]; N(2) = {1, 2}: [.25,.75]
    e = neighbor_ensemble(bank[index], index, graph, "uniform", bank=bank)
    assert e.tolist() == [[0.75, 0.25], [0.25, 0.75]]
    # batch scope: sample 1 is not in the batch, so each sample is its own only neighbour
    e = neighbor_ensemble(bank[index], index, graph, "uniform")
    assert e.tolist() == [[1.0, 0.0], [0.0, 1.0]]
    # batch {0, 1, 2, 0 again}: N(1) = all three → [.5,.5]; the repeated 0 counts once (first draw)
    index = torch.tensor([0, 1, 2, 0])
    probs = torch.tensor([[1.0, 0.0], [0.5, 0.5], [0.0, 1.0], [0.0, 1.0]])
    e = neighbor_ensemble(probs, index, graph, "uniform")
    assert e[1].tolist() == [0.5, 0.5]
    assert e[0].tolist() == e[3].tolist() == [0.75, 0.25]


def test_first_draws_of_repeated_batch_indices():
    # distinct values 2, 3, 5 (sorted): first drawn at positions 3, 1, 0
    assert first_draws(torch.tensor([5, 3, 5, 2, 3])).tolist() == [3, 1, 0]
    # many repeats (where an indexed assignment's winner is unspecified): always the first draw
    index = torch.cat([torch.tensor([9, 4]), torch.randint(0, 10, (20000,))])
    first = first_draws(index)
    assert index[first].tolist() == sorted(set(index.tolist())) and first[-1] == 0 and first[4] == 1


def test_neighbor_ensemble_weights():
    graph = _graph()
    bank = torch.tensor([[1.0, 0.0], [0.5, 0.5], [0.0, 1.0]])
    index = torch.tensor([0])
    # N(0) = {0 (D=0), 1 (D=0.1)}, τ = 1.
    # similarity: w ∝ (e^0, e^-0.1) → w_00 = 1/(1+e^-0.1) = 0.524979; e_0 = w_00·[1,0] + w_01·[.5,.5]
    w = 1 / (1 + math.exp(-0.1))
    e = neighbor_ensemble(bank[index], index, graph, "similarity", 1.0, bank=bank)
    assert e[0].tolist() == pytest.approx([w + (1 - w) / 2, (1 - w) / 2], abs=1e-6)   # [0.762490, 0.237510]
    # distance (released code): w ∝ (e^0, e^+0.1) → w_00 = 1/(1+e^0.1) = 0.475021: the farther one weighs more
    w = 1 / (1 + math.exp(0.1))
    e = neighbor_ensemble(bank[index], index, graph, "distance", 1.0, bank=bank)
    assert e[0].tolist() == pytest.approx([w + (1 - w) / 2, (1 - w) / 2], abs=1e-6)   # [0.737510, 0.262490]
    # τ = 0.05 sharpens the similarity weights: w_00 = 1/(1+e^-2) = 0.880797
    w = 1 / (1 + math.exp(-2))
    e = neighbor_ensemble(bank[index], index, graph, "similarity", 0.05, bank=bank)
    assert e[0, 0].item() == pytest.approx(w + (1 - w) / 2, abs=1e-6)
    with pytest.raises(ValueError, match="NEIGHBOR_WEIGHT"):
        neighbor_ensemble(bank[index], index, graph, "softmax", bank=bank)


def test_exchange_labels_hand_computed():
    # e_g = [.8,.2], e_1 = [.5,.5], T = 1.
    # KL(e_g‖e_1) = .8·ln 1.6 + .2·ln .4 = 0.192745 → w = e^-0.192745 = 0.824701;
    # ẽ_g = ([.8,.2] + w·[.5,.5]) / (1 + w) = [0.664412, 0.335588]
    # KL(e_1‖e_g) = .5·ln(.5/.8) + .5·ln(.5/.2) = ln 1.25 → w' = 0.8; ẽ_1 = ([.5,.5] + .8·[.8,.2])/1.8
    #   = [0.633333, 0.366667]
    e = torch.tensor([[[0.8, 0.2]], [[0.5, 0.5]]])
    out = exchange_labels(e, 1.0)
    w = math.exp(-(0.8 * math.log(1.6) + 0.2 * math.log(0.4)))
    assert out[0, 0].tolist() == pytest.approx([(0.8 + w / 2) / (1 + w), (0.2 + w / 2) / (1 + w)], abs=1e-6)
    assert out[1, 0].tolist() == pytest.approx([1.14 / 1.8, 0.66 / 1.8], abs=1e-6)
    # a zero probability gives an infinite KL in exact arithmetic: the weight is ~0, and no NaN
    e = torch.tensor([[[1.0, 0.0]], [[0.5, 0.5]]])
    out = exchange_labels(e, math.log(2))
    # KL(e_g‖e_1) = ln 2 → w = e^-1: ẽ_g = ([1,0] + e^-1·[.5,.5]) / (1 + e^-1) = [0.865529, 0.134471]
    w = math.exp(-1)
    assert out[0, 0].tolist() == pytest.approx([(1 + w / 2) / (1 + w), (w / 2) / (1 + w)], abs=1e-6)
    assert out[1, 0].tolist() == pytest.approx([0.5, 0.5], abs=1e-6)
    assert torch.isfinite(out).all()


def test_refined_targets():
    # ỹ = α·onehot(y) + (1−α)·e with α = 0.1, y = 1, e = [.5,.5]: [.45, .55]
    out = refined_targets(torch.tensor([[0.5, 0.5]]), torch.tensor([1]), 0.1)
    assert out[0].tolist() == pytest.approx([0.45, 0.55])


def _mixed_cfg(max_parts=2, lam=0.2):
    cfg = get_cfg()
    cfg.CLUSTER.DISTANCE = "MixedJaccardDistance"
    cfg.CLUSTER.K1, cfg.CLUSTER.K2, cfg.CLUSTER.PART_WEIGHT = 8, 3, lam
    cfg.MODEL.HEADS.NUM_PARTS = max_parts
    return cfg


def _dense(jac):
    out = np.ones(jac.shape, dtype=np.float64)
    coo = jac.tocoo()
    out[coo.row, coo.col] = coo.data
    return out


def test_mixed_jaccard_equals_weighted_sum_and_prunes_exactly():
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(6, 3, 16))
    x = centres[np.repeat(np.arange(6), 7)] + 0.4 * rng.normal(size=(42, 3, 16))
    x /= np.linalg.norm(x, axis=2, keepdims=True)
    feats = torch.from_numpy(x.reshape(42, -1).astype(np.float32))
    dist = build_distance(_mixed_cfg())
    mixed = dist(feats)
    jacs = [_dense(jaccard_distance(feats[:, b * 16:(b + 1) * 16], k1=8, k2=3)) for b in range(3)]
    expected = 0.6 * jacs[0] + 0.2 * jacs[1] + 0.2 * jacs[2]
    np.testing.assert_allclose(_dense(mixed), expected, atol=1e-6)
    assert (mixed.diagonal() == 0).all() and mixed[np.arange(42), np.arange(42)].size == 42
    assert mixed.nnz > 42                                   # some off-diagonal pairs share support
    pruned = dist(feats, max_dist=0.5)
    assert pruned.data.max() <= 0.5
    close = expected <= 0.5
    np.testing.assert_allclose(_dense(pruned)[close], expected[close], atol=1e-6)
    assert pruned.nnz == int(close.sum())                  # diagonal zeros stored explicitly
    with pytest.raises(ValueError, match="does not split evenly"):
        dist(feats[:, :40])
    with pytest.raises(ValueError, match="PART_WEIGHT"):
        build_distance(_mixed_cfg(lam=0.6))


def _ncplr_cfg(**keys):
    cfg = get_cfg()
    cfg.MODEL.META_ARCHITECTURE = "NCPLR"
    cfg.MODEL.DEVICE = "cpu"
    cfg.MODEL.BACKBONE.DEPTH = 18
    cfg.MODEL.HEADS.NUM_PARTS = 2
    cfg.CLUSTER.DISTANCE = "MixedJaccardDistance"
    for k, v in keys.items():
        node = cfg
        *path, last = k.split(".")
        for p in path:
            node = getattr(node, p)
        setattr(node, last, v)
    return cfg


def test_ncplr_model_reset_and_losses():
    torch.manual_seed(0)
    model = build_model(_ncplr_cfg())
    images = torch.randn(12, 3, 64, 32)
    extractor = model.cluster_extractor()
    extractor.eval()
    feats = extractor({"images": images})
    assert feats.shape == (12, 3 * 512)
    assert torch.allclose(feats.view(12, 3, 512).norm(dim=2), torch.ones(12, 3), atol=1e-5)
    labels = np.array([0, 0, 0, 1, 1, 1, 2, 2, 2, -1, -1, -1])
    # a distance that makes samples 0-2 and 3-5 mutual neighbours, 6-8 isolated
    dist = np.ones((12, 12), dtype=np.float32)
    dist[:3, :3] = dist[3:6, 3:6] = 0.1
    np.fill_diagonal(dist, 0)
    model.reset_pseudo_labels(ClusterResult(labels, features=feats, distance=dist))
    branches = feats.view(12, 3, 512)
    centroid = torch.nn.functional.normalize(branches[:3, 1].mean(0), dim=0)
    assert torch.allclose(model.classifiers[1].weight[0], centroid, atol=1e-6)
    assert torch.allclose(model.memories[2].features[1],
                          torch.nn.functional.normalize(branches[3:6, 2].mean(0), dim=0), atol=1e-6)
    assert model.graph_indptr.tolist() == [0, 3, 6, 9, 12, 15, 18, 19, 20, 21]
    assert model.bank.shape == (3, 9, 3) and model.bank[0, 4].tolist() == [0.0, 1.0, 0.0]
    model.train()
    batch = {"images": images[:9], "targets": torch.as_tensor(labels[:9]), "index": torch.arange(9)}
    losses = model(batch)
    assert set(losses) == {"BranchContrastLoss", "RefinedLabelLoss"} and all(torch.isfinite(v) for v in losses.values())
    sum(losses.values()).backward()
    assert model.classifiers[2].weight.grad.abs().sum() > 0
    # the bank now holds the batch's predictions (rows sum to 1, no longer one-hot for all)
    assert torch.allclose(model.bank.sum(2), torch.ones(3, 9))
    model.eval()
    assert model({"images": images[:2]}).shape == (2, 512)


def test_ncplr_refined_labels_follow_the_neighbours():
    # isolated sample 6 (own neighbour only): ỹ = α·onehot + (1−α)·softmax(z_6) for the global branch
    model = build_model(_ncplr_cfg(**{"MODEL.HEADS.NUM_PARTS": 0, "CLUSTER.DISTANCE": "JaccardDistance",
                                      "MODEL.NCPLR.NEIGHBOR_SCOPE": "batch"}))
    dist = np.eye(3, dtype=np.float32)
    dist = 1 - dist                                          # nobody is anybody's neighbour
    model.reset_pseudo_labels(ClusterResult(np.array([0, 1, 2]), features=torch.randn(3, 512), distance=dist))
    z = torch.tensor([[2.0, 0.0, 0.0], [0.0, 0.0, 0.0]])
    (soft,) = model.refined_labels([z], torch.tensor([1, 2]), torch.tensor([0, 1]))
    expected = 0.1 * torch.eye(3)[[1, 2]] + 0.9 * z.softmax(1)
    assert torch.allclose(soft, expected)


def test_ncplr_branch_graphs_are_stacked():
    # NEIGHBOR_GRAPH branch: branch b's graph (its own Jaccard, radius NEIGHBOR_EPS / PART_NEIGHBOR_EPS)
    # occupies rows and columns b·M … (b+1)·M − 1 of one block-diagonal CSR graph
    torch.manual_seed(0)
    model = build_model(_ncplr_cfg(**{"MODEL.NCPLR.NEIGHBOR_GRAPH": "branch", "CLUSTER.K1": 4, "CLUSTER.K2": 2,
                                      "MODEL.NCPLR.NEIGHBOR_EPS": 0.8, "MODEL.NCPLR.PART_NEIGHBOR_EPS": 0.9}))
    centres = torch.randn(3, 3, 512)
    feats = torch.nn.functional.normalize(centres.repeat_interleave(4, 0) + 0.5 * torch.randn(12, 3, 512), dim=2)
    labels = np.repeat(np.arange(3), 4)
    labels[5] = -1
    model.reset_pseudo_labels(ClusterResult(labels, features=feats.flatten(1)))              # no clustering distance needed
    keep = np.flatnonzero(labels >= 0)
    graphs = [neighbor_graph(jaccard_distance(feats[:, b], k1=4, k2=2), keep, eps)
              for b, eps in enumerate([0.8, 0.9, 0.9])]
    m = len(keep)
    for b, (indptr, indices, dist) in enumerate(graphs):
        rows = model.graph_indptr[b * m:(b + 1) * m + 1]
        assert (rows - rows[0]).tolist() == indptr.tolist()
        assert (model.graph_indices[rows[0]:rows[-1]] - b * m).tolist() == indices.tolist()
        assert torch.allclose(model.graph_dist[rows[0]:rows[-1]], dist)
    soft = model.refined_labels([torch.randn(m, 3) for _ in range(3)], torch.as_tensor(labels[keep]),
                                torch.arange(m))
    assert all(torch.allclose(q.sum(1), torch.ones(m)) for q in soft)


def test_ncplr_state_dict_round_trip():
    # the graph, the bank and the classifiers follow the checkpoint's sizes (resume between clusterings)
    model = build_model(_ncplr_cfg())
    feats = torch.nn.functional.normalize(torch.randn(6, 3, 512), dim=2).flatten(1)
    dist = np.full((6, 6), 0.1, dtype=np.float32)
    np.fill_diagonal(dist, 0)
    model.reset_pseudo_labels(ClusterResult(np.array([0, 0, 0, 1, 1, -1]), features=feats, distance=dist))
    fresh = build_model(_ncplr_cfg())
    fresh.load_state_dict(model.state_dict())
    for name in ("graph_indptr", "graph_indices", "graph_dist", "bank"):
        assert torch.equal(getattr(fresh, name), getattr(model, name)), name
    assert torch.equal(fresh.classifiers[2].weight, model.classifiers[2].weight)
    assert fresh.bank.shape == (3, 5, 2)


def test_ncplr_config_errors():
    with pytest.raises(ValueError, match="MixedJaccardDistance"):
        build_model(_ncplr_cfg(**{"CLUSTER.DISTANCE": "JaccardDistance"}))
    with pytest.raises(ValueError, match="NEIGHBOR_SCOPE"):
        build_model(_ncplr_cfg(**{"MODEL.NCPLR.NEIGHBOR_SCOPE": "global"}))
    with pytest.raises(ValueError, match="FORWARD_BATCH_SIZE"):
        build_model(_ncplr_cfg(**{"SOLVER.FORWARD_BATCH_SIZE": 16}))
    model = build_model(_ncplr_cfg())
    with pytest.raises(ValueError, match="distance"):
        model.reset_pseudo_labels(ClusterResult(np.array([0, 0, 0]), features=torch.randn(3, 3 * 512)))


@pytest.mark.parametrize("name", ["Base-NCPLR.yml", "NCPLR/market1501.yml", "NCPLR/msmt17.yml",
                                  "NCPLR/market1501_global.yml", "Synthetic/gl_ncplr.yml"])
def test_ncplr_configs_load_and_build(name):
    cfg = setup_cfg(os.path.join(ROOT, "configs", name), ["MODEL.BACKBONE.PRETRAIN", "False",
                                                           "MODEL.DEVICE", "cpu"])
    model = build_model(cfg)
    assert type(model).__name__ == "NCPLR"
    assert model.num_branches == 1 + cfg.MODEL.HEADS.NUM_PARTS
    build_distance(cfg)


def test_gl_ncplr_trains_on_tiny_world(tiny_root, tmp_path):
    # the hook hands the part features to MixedJaccardDistance and the distance to the model
    opts = tiny_opts(tiny_root, tmp_path, **{
        "MODEL.META_ARCHITECTURE": "NCPLR", "MODEL.HEADS.NUM_PARTS": 2, "SOLVER.MAX_EPOCHS": 1,
        "CLUSTER.DISTANCE": "MixedJaccardDistance", "MODEL.NCPLR.NEIGHBOR_EPS": 0.5, "TEST.EVAL_PERIOD": 0})
    trainer = DefaultTrainer(setup_cfg("", opts))
    trainer.train()
    assert trainer.model.graph_indices.numel() > trainer.model.graph_indptr.numel() - 1  # off-diagonal pairs
    assert trainer.model.classifiers[0].weight.shape[0] == trainer.model.memories[0].num_classes > 0
