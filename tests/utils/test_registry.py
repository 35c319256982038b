import pytest

from unreidusl.utils.registry import Registry


def test_register_decorator_and_get():
    reg = Registry("THING")

    @reg.register()
    class Alpha:
        pass

    @reg.register(name="beta")
    def make_beta():
        return 1

    assert reg.get("Alpha") is Alpha and reg.get("beta") is make_beta
    assert "Alpha" in reg and len(reg) == 2


def test_duplicate_name_is_an_error():
    reg = Registry("THING")
    reg.register(lambda: 0, name="x")
    with pytest.raises(KeyError, match="already registered"):
        reg.register(lambda: 1, name="x")


def test_lookup_error_lists_registered_names_and_close_match():
    reg = Registry("CLUSTERER")
    for n in ("DBSCAN", "KMeans"):
        reg.register(object, name=n)
    with pytest.raises(KeyError) as e:
        reg.get("DBSCA")
    msg = str(e.value)
    assert "CLUSTERER" in msg and "DBSCAN" in msg and "KMeans" in msg and "Did you mean" in msg


def test_builtin_registries_are_populated():
    from unreidusl.cluster import CLUSTERER_REGISTRY, DISTANCE_REGISTRY
    from unreidusl.data import DATASET_REGISTRY, SAMPLER_REGISTRY
    from unreidusl.engine import HOOK_REGISTRY
    from unreidusl.modeling import BACKBONE_REGISTRY, LOSS_REGISTRY, MEMORY_REGISTRY, META_ARCH_REGISTRY

    assert "ResNet" in BACKBONE_REGISTRY and "ClusterContrast" in META_ARCH_REGISTRY
    assert "ClusterContrastLoss" in LOSS_REGISTRY and "ClusterMemory" in MEMORY_REGISTRY
    assert "JaccardDistance" in DISTANCE_REGISTRY and "DBSCAN" in CLUSTERER_REGISTRY
    assert "Market1501" in DATASET_REGISTRY and "RandomMultipleGallerySampler" in SAMPLER_REGISTRY
    assert HOOK_REGISTRY.name == "HOOK"
