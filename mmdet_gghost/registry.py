"""Registries of mmdet-gghost.

Our models live in a registry of scope ``mmdet_gghost`` (a child of
mmengine's root registry, so ``dict(type='mmdet_gghost.GGhostResNet')``
resolves from any toolbox) and are also registered under their plain names
in mmdet's and mmpretrain's ``MODELS`` (so ``custom_imports`` is enough).
"""
from mmengine.registry import MODELS as MMENGINE_MODELS
from mmengine.registry import Registry

MODELS = Registry('model', parent=MMENGINE_MODELS, scope='mmdet_gghost',
                  locations=['mmdet_gghost.models'])


def _toolbox_registries():
    registries = []
    try:
        from mmdet.registry import MODELS as MMDET_MODELS
        registries.append(MMDET_MODELS)
    except ImportError:  # mmdet is optional for classification-only users
        pass
    try:
        from mmpretrain.registry import MODELS as MMPRETRAIN_MODELS
        registries.append(MMPRETRAIN_MODELS)
    except ImportError:  # and mmpretrain for detection-only users
        pass
    return registries


def register_model(cls):
    """Register ``cls`` in our registry and in every installed toolbox's."""
    MODELS.register_module(module=cls)
    for registry in _toolbox_registries():
        registry.register_module(module=cls, force=True)
    return cls
