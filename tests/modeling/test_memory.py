import pytest
import torch
import torch.nn.functional as F

from unreidusl.modeling.memory import ClusterMemory


def reference_momentum(mem, x, y, m):
    mem = mem.clone()
    for xi, yi in zip(x, y):  # Cluster Contrast: per sample, in batch order
        mem[yi] = F.normalize(m * mem[yi] + (1 - m) * xi, dim=0)
    return mem


def setup(mode, m=0.2):
    torch.manual_seed(0)
    memory = ClusterMemory(8, temp=0.05, old_weight=m, update=mode)
    memory.reset(torch.randn(5, 8))
    x = F.normalize(torch.randn(12, 8), dim=1)
    y = torch.tensor([3, 1, 3, 0, 3, 1, 4, 4, 3, 0, 1, 1])
    return memory, x, y


def test_reset_normalises_centroids():
    memory, _, _ = setup("momentum")
    assert torch.allclose(memory.features.norm(dim=1), torch.ones(5))


def test_momentum_update_equals_sequential_rule():
    memory, x, y = setup("momentum")
    expected = reference_momentum(memory.features, x, y, 0.2)
    memory.update(x, y)
    assert torch.allclose(memory.features, expected, atol=1e-6)


def test_hard_update_uses_least_similar_instance():
    memory, x, y = setup("hard")
    old = memory.features.clone()
    memory.update(x, y)
    for c in y.unique():
        idx = (y == c).nonzero().flatten()
        hardest = idx[(x[idx] @ old[c]).argmin()]
        assert torch.allclose(memory.features[c], F.normalize(0.2 * old[c] + 0.8 * x[hardest], dim=0), atol=1e-6)
    assert torch.equal(memory.features[2], old[2])  # class 2 absent from the batch


def test_mean_update():
    memory, x, y = setup("mean")
    old = memory.features.clone()
    memory.update(x, y)
    mean = x[y == 1].mean(0)
    assert torch.allclose(memory.features[1], F.normalize(0.2 * old[1] + 0.8 * mean, dim=0), atol=1e-6)


def test_logits_use_pre_update_memory_and_gradient_is_valid():
    memory, x, y = setup("momentum")
    x = x.clone().requires_grad_(True)
    old = memory.features.clone()
    logits = memory.logits(x)
    memory.update(x.detach(), y)
    F.cross_entropy(logits, y).backward()  # out-of-place update keeps autograd happy
    assert torch.allclose(logits, x.detach() @ old.t() / 0.05)
    assert x.grad is not None and torch.isfinite(x.grad).all()


def test_state_dict_with_other_cluster_count_loads():
    memory, _, _ = setup("momentum")
    other = ClusterMemory(8)
    other.load_state_dict(memory.state_dict())
    assert torch.equal(other.features, memory.features)


def test_bad_arguments():
    with pytest.raises(ValueError, match="MODEL.MEMORY.UPDATE"):
        ClusterMemory(8, update="median")
    with pytest.raises(RuntimeError, match="empty"):
        ClusterMemory(8).logits(torch.randn(2, 8))
