"""MTCluster: EMA teacher, classifier re-initialisation, neighbour map, optimiser-state policy, training."""
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from unreidusl.engine import DefaultTrainer, default_setup, setup_cfg
from unreidusl.modeling import build_model
from unreidusl.modeling.meta_arch import nearest_clusters
from unreidusl.cluster import ClusterResult

from helpers import tiny_opts

SMALL = ["MODEL.META_ARCHITECTURE", "MTCluster", "MODEL.BACKBONE.DEPTH", "18", "MODEL.LOSSES.ID_K", "2"]


def small_model(*extra):
    return build_model(setup_cfg("", SMALL + list(extra)))


def test_ema_rate_and_buffers():
    model = small_model("MEAN_TEACHER.ALPHA", "0.9")
    s_params = [p.detach().clone() for p in model.student.parameters()]
    t_params = [p.detach().clone() for p in model.teacher.parameters()]
    with torch.no_grad():
        for p in model.student.parameters():
            p.add_(1.0)
        model.student.neck.running_mean.fill_(2.0)
    model.update_teacher(global_step=3)  # α = min(1 − 1/4, 0.9) = 0.75
    for t0, s0, t in zip(t_params, s_params, model.teacher.parameters()):
        assert torch.allclose(t, 0.75 * t0 + 0.25 * (s0 + 1.0), atol=1e-6)
    assert torch.allclose(model.teacher.neck.running_mean, torch.full_like(model.teacher.neck.running_mean, 0.5))
    model.update_teacher(global_step=0)  # α = 0: copy
    for t, s in zip(model.teacher.parameters(), model.student.parameters()):
        assert torch.equal(t, s)


def test_classifier_rows_are_normalised_centroids_for_student_and_teacher():
    model = small_model()
    feats = torch.randn(12, model.student.feat_dim)
    labels = np.array([0, 0, 1, 1, 2, 2, -1, 0, 1, 2, 3, 3])
    model.reset_pseudo_labels(ClusterResult(labels, features=feats))
    expected = torch.stack([F.normalize(feats[labels == k].mean(0), dim=0) for k in range(4)])
    assert torch.allclose(model.student_classifier.weight, expected, atol=1e-6)
    assert torch.allclose(model.teacher_classifier.weight, expected, atol=1e-6)
    assert model.cluster_neighbors.shape == (4, 2)
    assert not (model.cluster_neighbors == torch.arange(4).unsqueeze(1)).any()


def test_nearest_clusters_prefers_jaccard_then_cosine():
    c = F.normalize(torch.tensor([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0], [-1.0, 0.0]]), dim=1)
    nn_idx = nearest_clusters(c, k=2, k1=2, k2=1)
    assert nn_idx[0, 0].item() == 1 and nn_idx.shape == (4, 2)
    assert (nearest_clusters(c[:2], k=3)[:, 1:] == -1).all()


def test_checkpoint_round_trip_resizes_classifier():
    model = small_model()
    model.reset_pseudo_labels(ClusterResult(np.array([0, 0, 1, 1, 2, 2]), features=torch.randn(6, model.student.feat_dim)))
    fresh = small_model()
    fresh.load_state_dict(model.state_dict())
    assert torch.equal(fresh.student_classifier.weight, model.student_classifier.weight)
    assert torch.equal(fresh.cluster_neighbors, model.cluster_neighbors)


def test_bad_option_is_a_clear_error():
    from unreidusl.config import ConfigError
    with pytest.raises(ConfigError, match="ID_OPTION.*use one of"):
        small_model("MODEL.LOSSES.ID_OPTION", "7")


def test_auxuslreid_loss_keys_become_the_loss_set():
    model = small_model("MODEL.LOSSES.ID_OPTION", "1", "MODEL.LOSSES.TRI_OPTION", "1",
                        "MUTUAL_TEACH.CE_SOFT_WRIGHT", "0.3")
    assert list(model.losses) == ["CrossEntropyLoss", "SoftMarginTripletLoss", "SoftCrossEntropyLoss",
                                  "SoftTripletLoss"]
    assert [model.loss_weights[n] for n in model.losses] == [1 - 0.3, 1 - 0.8, 0.3, 0.8]
    default = small_model()
    assert list(default.losses)[:2] == ["RestrictedLabelSmoothingCrossEntropy", "WeightAdaptiveTripletLoss"]


@pytest.mark.slow
def test_mtcluster_trains_with_dynamic_iterations_and_drops_stale_moments(tiny_root, tmp_path):
    cfg = setup_cfg("", tiny_opts(tiny_root, tmp_path / "mt", **{
        "MODEL.META_ARCHITECTURE": "MTCluster", "MODEL.LOSSES.ID_K": 2,
        "DATALOADER.ITERS_CLUSTER_MULTIPLIER": 0.6}))
    default_setup(cfg)
    trainer = DefaultTrainer(cfg)
    trainer.train()
    w = trainer.model.student_classifier.weight
    state = trainer.optimizer.state.get(w)
    assert state is not None and state["exp_avg"].shape == w.shape  # fresh moments for the new rows
    labels_hook = next(h for h in trainer.hooks if type(h).__name__ == "PseudoLabelHook")
    relabel_hook = next(h for h in trainer.hooks if type(h).__name__ == "RelabelledOptimizerState")
    assert labels_hook.rounds == relabel_hook.last_round == cfg.SOLVER.MAX_EPOCHS
    clusters = [v for _, v in trainer.storage.history("cluster/num_clusters")]
    assert len(clusters) == cfg.SOLVER.MAX_EPOCHS
    assert trainer.iter == sum(max(1, round(0.6 * c)) for c in clusters)  # not SOLVER.ITERS_PER_EPOCH
    assert any(t.ne(s).any() for t, s in zip(trainer.model.teacher.parameters(),
                                              trainer.model.student.parameters()))
