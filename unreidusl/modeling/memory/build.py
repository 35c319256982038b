from ...utils.registry import Registry

MEMORY_REGISTRY = Registry("MEMORY")
MEMORY_REGISTRY.__doc__ = """Feature memories: called as ``obj(cfg, dim)``; return an ``nn.Module`` with
``reset(centroids)``, ``logits(x)`` and ``update(x, targets)``."""


def build_memory(cfg, dim: int):
    return MEMORY_REGISTRY.get(cfg.MODEL.MEMORY.NAME)(cfg, dim)
