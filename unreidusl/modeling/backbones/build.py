from ...utils.registry import Registry

BACKBONE_REGISTRY = Registry("BACKBONE")
BACKBONE_REGISTRY.__doc__ = """Backbones: called as ``obj(cfg)``; return an ``nn.Module`` with attribute
``out_channels`` whose forward maps images [B,3,H,W] to feature maps [B,C,h,w]."""


def build_backbone(cfg):
    return BACKBONE_REGISTRY.get(cfg.MODEL.BACKBONE.NAME)(cfg)
