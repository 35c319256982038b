"""Fail loudly if torchvision does not import or its compiled ops do not match torch."""


def test_torchvision_imports_and_ops_work():
    import torch
    import torchvision
    from torchvision.ops import nms

    boxes = torch.tensor([[0.0, 0.0, 10.0, 10.0], [1.0, 1.0, 11.0, 11.0], [50.0, 50.0, 60.0, 60.0]])
    keep = nms(boxes, torch.tensor([0.9, 0.8, 0.7]), 0.5)
    assert keep.tolist() == [0, 2], torchvision.__version__
    net = torchvision.models.resnet18(weights=None)
    assert net(torch.zeros(1, 3, 64, 32)).shape == (1, 1000)
