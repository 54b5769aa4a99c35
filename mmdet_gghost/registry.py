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


def _qualname(cls):
    return f'{cls.__module__}.{cls.__qualname__}'


def register_once(registry, cls):
    """Register ``cls`` under its name in ``registry``, never shadowing.

    The same class again (a second import, a module reload) is a no-op
    (a reloaded class replaces its old self); another class already
    registered under that name is an error naming both.
    """
    existing = registry.module_dict.get(cls.__name__)
    if existing is None or existing is cls:
        if existing is None:
            registry.register_module(module=cls)
        return cls
    if _qualname(existing) != _qualname(cls):
        raise KeyError(
            f'{cls.__name__} is already registered in the {registry.scope} '
            f'registry {registry.name!r} as {_qualname(existing)}; '
            f'mmdet_gghost will not shadow it with {_qualname(cls)}. Use '
            f"type='mmdet_gghost.{cls.__name__}' or rename one of them.")
    registry.register_module(module=cls, force=True)  # reloaded module
    return cls


def register_model(cls):
    """Register ``cls`` in our registry and in every installed toolbox's."""
    register_once(MODELS, cls)
    for registry in _toolbox_registries():
        register_once(registry, cls)
    return cls
