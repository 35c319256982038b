"""torchvision ResNet trunk (conv1..layer4) with a configurable last stride and local ImageNet weights."""
import logging
import os

import torch
from torch import nn

from ...utils.checkpoint import load_checkpoint
from .build import BACKBONE_REGISTRY

logger = logging.getLogger(__name__)

_ARCHS = {18: "resnet18", 34: "resnet34", 50: "resnet50", 101: "resnet101", 152: "resnet152"}


def _load_imagenet_weights(model: nn.Module, depth: int, path: str, allow_download: bool) -> None:
    import torchvision

    if path:
        if not os.path.isfile(path):
            raise FileNotFoundError(
                f"MODEL.BACKBONE.PRETRAIN_PATH={path} does not exist. Point it at a torchvision "
                f"ResNet-{depth} state dict, or set MODEL.BACKBONE.PRETRAIN False."
            )
        state = load_checkpoint(path)  # weights only: a pickle that would run code is refused
        if isinstance(state, dict) and "state_dict" in state:
            state = state["state_dict"]
        source = path
    elif allow_download:
        weights = torchvision.models.get_model_weights(_ARCHS[depth]).DEFAULT
        state = weights.get_state_dict(progress=True)
        source = weights.url
    else:
        raise ValueError(
            "MODEL.BACKBONE.PRETRAIN is True but no weights are available offline: set "
            "MODEL.BACKBONE.PRETRAIN_PATH to a local torchvision state dict, or allow the download "
            "with MODEL.BACKBONE.PRETRAIN_DOWNLOAD True."
        )
    state = {k: v for k, v in state.items() if not k.startswith("fc.")}
    missing, unexpected = model.load_state_dict(state, strict=False)
    missing = [k for k in missing if not k.startswith("fc.")]
    if missing or unexpected:
        raise ValueError(
            f"ImageNet weights from {source} do not match ResNet-{depth}: missing {missing[:5]}, "
            f"unexpected {unexpected[:5]}. Check MODEL.BACKBONE.DEPTH."
        )
    logger.info("Loaded ImageNet weights for ResNet-%d from %s", depth, source)


class ResNetTrunk(nn.Module):
    """ResNet without avgpool/fc. ``last_stride=1`` keeps layer4 at the resolution of layer3.
    ``stem_relu=False`` drops the ReLU after ``bn1`` (stem ``conv1 → bn1 → maxpool``), the model
    AuxUSLReID's released code trained."""

    def __init__(self, depth: int = 50, last_stride: int = 1, pretrain: bool = False,
                 pretrain_path: str = "", allow_download: bool = False, stem_relu: bool = True) -> None:
        super().__init__()
        import torchvision

        if depth not in _ARCHS:
            raise ValueError(f"MODEL.BACKBONE.DEPTH must be one of {sorted(_ARCHS)}, got {depth}")
        if last_stride not in (1, 2):
            raise ValueError(f"MODEL.BACKBONE.LAST_STRIDE must be 1 or 2, got {last_stride}")
        net = getattr(torchvision.models, _ARCHS[depth])(weights=None)
        if pretrain:
            _load_imagenet_weights(net, depth, pretrain_path, allow_download)
        block = net.layer4[0]
        strided = block.conv2 if depth >= 50 else block.conv1
        strided.stride = (last_stride, last_stride)
        if block.downsample is not None:
            block.downsample[0].stride = (last_stride, last_stride)
        self.stem = nn.Sequential(net.conv1, net.bn1, *([net.relu] if stem_relu else []), net.maxpool)
        self.layer1, self.layer2, self.layer3, self.layer4 = net.layer1, net.layer2, net.layer3, net.layer4
        self.out_channels = net.fc.in_features

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(x)
        return self.layer4(self.layer3(self.layer2(self.layer1(x))))


@BACKBONE_REGISTRY.register(name="ResNet")
def build_resnet_backbone(cfg) -> ResNetTrunk:
    b = cfg.MODEL.BACKBONE
    return ResNetTrunk(b.DEPTH, b.LAST_STRIDE, b.PRETRAIN, b.PRETRAIN_PATH, b.PRETRAIN_DOWNLOAD,
                       b.STEM_RELU)
