"""Our ``MODELS`` registry (scope ``mmdet_gghost``, a child of mmengine's
root, so ``type='mmdet_gghost.GGhostResNet'`` resolves from any toolbox);
models are also registered by plain name in mmdet's and mmpretrain's."""
import importlib

from mmengine.registry import MODELS as MMENGINE_MODELS
from mmengine.registry import Registry

MODELS = Registry('model', parent=MMENGINE_MODELS, scope='mmdet_gghost',
                  locations=['mmdet_gghost.models'])


def _qualname(cls):
    return f'{cls.__module__}.{cls.__qualname__}'


def register_once(registry, cls):
    """Register ``cls`` under its name in ``registry``, never shadowing:
    the same class again (a second import; a module reload replaces its old
    self) is a no-op, another class of that name an error naming both."""
    existing = registry.module_dict.get(cls.__name__)
    if existing is cls:
        return cls
    if existing is not None and _qualname(existing) != _qualname(cls):
        raise KeyError(
            f'{cls.__name__} is already registered in the {registry.scope} '
            f'registry {registry.name!r} as {_qualname(existing)}; '
            f'mmdet_gghost will not shadow it with {_qualname(cls)}. Use '
            f"type='mmdet_gghost.{cls.__name__}' or rename one of them.")
    registry.register_module(module=cls, force=existing is not None)
    return cls


def register_model(cls):
    """Register ``cls`` in our registry and in every installed toolbox's
    (each toolbox is optional: classification- or detection-only users)."""
    register_once(MODELS, cls)
    for toolbox in ('mmdet', 'mmpretrain'):
        try:
            registry = importlib.import_module(f'{toolbox}.registry')
        except ImportError:
            continue
        register_once(registry.MODELS, cls)
    return cls
