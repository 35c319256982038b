"""SOLVER.AMP (bf16 autocast on CPU, GradScaler state in checkpoints), MODEL.CHANNELS_LAST,
MODEL.BN_VIRTUAL_SPLITS (per-chunk BatchNorm statistics) and MODEL.SYNC_BN checks."""
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from unreidusl.engine import DefaultTrainer, default_setup, setup_cfg
from unreidusl.engine.amp import MixedPrecision
from unreidusl.engine.train_loop import SimpleTrainer
from unreidusl.modeling import build_model
from unreidusl.modeling.layers.batch_norm import SplitBatchNorm
from unreidusl.utils.events import EventStorage
from unreidusl.cluster import ClusterResult

from helpers import tiny_opts

SMALL = ["MODEL.BACKBONE.DEPTH", "18", "MODEL.BACKBONE.LAST_STRIDE", "2"]


def small_model(*opts):
    torch.manual_seed(0)
    model = build_model(setup_cfg("", SMALL + list(opts))).train()
    model.reset_pseudo_labels(ClusterResult(np.repeat(np.arange(4), 4), features=torch.randn(16, 512)))
    return model


def test_bf16_autocast_step_on_cpu_runs_in_bf16_and_is_finite():
    model = small_model()
    before = model.encoder.backbone.stem[0].weight.detach().clone()
    dtypes = []
    model.encoder.backbone.register_forward_hook(lambda m, i, o: dtypes.append(o.dtype))
    trainer = SimpleTrainer(model, torch.optim.SGD(model.parameters(), lr=0.1))
    trainer.storage = EventStorage()
    trainer.amp = MixedPrecision(True, "bfloat16", "cpu")
    trainer.data_loader = [{"images": torch.randn(8, 3, 64, 32), "targets": torch.tensor([0, 0, 1, 1, 2, 2, 3, 3])}]
    trainer.run_step()
    assert dtypes == [torch.bfloat16]
    assert np.isfinite(trainer.storage.latest()["total_loss"][0])
    grads = [p.grad for p in model.parameters() if p.grad is not None]
    assert grads and all(g.dtype == torch.float32 and torch.isfinite(g).all() for g in grads)
    assert not torch.equal(before, model.encoder.backbone.stem[0].weight)


def test_float16_on_cpu_and_bad_dtype_are_refused():
    with pytest.raises(ValueError, match="SOLVER.AMP.DTYPE float16 needs CUDA"):
        MixedPrecision(True, "float16", "cpu")
    with pytest.raises(ValueError, match="SOLVER.AMP.DTYPE must be one of"):
        MixedPrecision(True, "half", "cuda")


def test_grad_scaler_state_is_checkpointed_and_restored(tiny_root, tmp_path):
    cfg = setup_cfg("", tiny_opts(tiny_root, tmp_path))
    default_setup(cfg)
    trainer = DefaultTrainer(cfg)
    trainer.amp.scaler = torch.amp.GradScaler("cpu", init_scale=1024.0, growth_interval=7)
    trainer.amp.scaler.scale(torch.ones(()))
    trainer.amp.scaler.update(512.0)  # as after a step with inf gradients
    trainer.save_checkpoint("model_0001")
    resumed = DefaultTrainer(cfg)
    resumed.amp.scaler = torch.amp.GradScaler("cpu")
    resumed.resume_or_load(resume=True)
    state = resumed.amp.scaler.state_dict()
    assert state["scale"] == 512.0 and state["growth_interval"] == 7


def test_channels_last_model_gives_the_same_features():
    plain, fast = small_model().eval(), small_model("MODEL.CHANNELS_LAST", "True").eval()
    fast.load_state_dict(plain.state_dict())
    assert fast.encoder.backbone.stem[0].weight.is_contiguous(memory_format=torch.channels_last)
    images = torch.randn(4, 3, 64, 32)
    with torch.no_grad():
        assert torch.allclose(plain({"images": images}), fast({"images": images}), atol=1e-5)


@pytest.mark.parametrize("shape", [(8, 3, 2, 2), (8, 3)])
def test_split_batch_norm_normalises_each_chunk_with_its_own_statistics(shape):
    torch.manual_seed(0)
    x = torch.randn(shape) * 3 + 1
    bn = SplitBatchNorm(3, splits=2, momentum=0.5)
    bn.weight.data = torch.tensor([1.0, 2.0, 0.5])
    bn.bias.data = torch.tensor([0.0, 1.0, -1.0])
    y = bn(x)
    for chunk, out in zip(x.split(4), y.split(4)):  # plain training BN of each half
        assert torch.allclose(out, F.batch_norm(chunk, None, None, bn.weight, bn.bias, True), atol=1e-5)
    dims = [0] + list(range(2, len(shape)))
    means = torch.stack([c.mean(dims) for c in x.split(4)])
    variances = torch.stack([c.var(dims, unbiased=True) for c in x.split(4)])
    assert torch.allclose(bn.running_mean, 0.5 * 0 + 0.5 * means.mean(0), atol=1e-5)
    assert torch.allclose(bn.running_var, 0.5 * 1 + 0.5 * variances.mean(0), atol=1e-5)
    bn.eval()
    assert torch.allclose(bn(x), F.batch_norm(x, bn.running_mean, bn.running_var, bn.weight, bn.bias, False))
    bn.train()
    with pytest.raises(ValueError, match="MODEL.BN_VIRTUAL_SPLITS=2 does not divide"):
        bn(x[:5])


def test_virtual_splits_convert_every_batch_norm_and_keep_the_state():
    plain, split = small_model(), small_model("MODEL.BN_VIRTUAL_SPLITS", "4")
    assert plain.state_dict().keys() == split.state_dict().keys()
    bns = [m for m in split.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    assert bns and all(isinstance(m, SplitBatchNorm) and m.splits == 4 for m in bns)
    assert not split.encoder.neck.bias.requires_grad


def test_sync_bn_needs_cuda_and_excludes_virtual_splits():
    with pytest.raises(ValueError, match="MODEL.SYNC_BN needs CUDA"):
        small_model("MODEL.SYNC_BN", "True", "MODEL.DEVICE", "cpu")
    with pytest.raises(ValueError, match="contradict"):
        small_model("MODEL.SYNC_BN", "True", "MODEL.BN_VIRTUAL_SPLITS", "2")


def test_clustering_knn_follows_the_model_device():
    from unreidusl.cluster.distances import knn_device

    assert knn_device("cpu") is None and knn_device("cuda:1") == "cuda:1"
    assert knn_device("auto") == ("cuda" if torch.cuda.is_available() else None)
