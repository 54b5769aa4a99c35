"""Registration once per registry: no silent shadowing of another class."""
import pytest
from mmengine.registry import Registry

from mmdet_gghost.models import GGhostResNet
from mmdet_gghost.models import GGhostResNet as Ours
from mmdet_gghost.registry import register_once


def test_backbones_resolve_in_every_registry():
    from mmdet.registry import MODELS as DET
    from mmpretrain.registry import MODELS as CLS

    from mmdet_gghost.registry import MODELS
    for registry in (DET, CLS, MODELS):
        assert registry.get('GGhostResNet') is GGhostResNet
    assert DET.get('mmdet_gghost.GGhostResNet') is GGhostResNet


def test_a_clash_is_an_error_naming_both_classes():
    registry = Registry('model', scope='clash_test')

    class GGhostResNet:  # another class of the same name
        pass

    registry.register_module(module=GGhostResNet)
    with pytest.raises(KeyError, match=r'already registered .* as '
                       r'test_registry\..*GGhostResNet; mmdet_gghost will '
                       r'not shadow it with mmdet_gghost\.models\.'):
        register_once(registry, Ours)
    assert registry.get('GGhostResNet') is GGhostResNet  # untouched


def test_registering_the_same_class_again_is_a_no_op():
    registry = Registry('model', scope='again_test')
    register_once(registry, GGhostResNet)
    register_once(registry, GGhostResNet)
    assert registry.get('GGhostResNet') is GGhostResNet
