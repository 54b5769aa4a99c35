r"""Our configs as bases of a user's config, like ``mmdet::``::

    _base_ = 'mmdet_gghost::retinanet_gghost_r34_1x_coco.py'

The configs ship in ``mmdet_gghost/.mim/configs`` (filled by ``setup.py``
from ``configs/``).  mmengine 0.10 knows ``pkg::`` only for its fixed
``MODULE2PACKAGE`` table, only for paths with a folder, and finds packages
through pkg_resources (site-packages for a PEP 660 editable install), so
:func:`enable_package_bases` teaches ``Config`` our prefix; our tools call
it, code calling ``Config.fromfile`` itself calls it once first.  Such a
base is read like a local file (scope ``None``): its types resolve in the
config's ``default_scope`` (mmengine's scope ``mmdet_gghost`` would hold
only our backbones).
"""
import difflib
import glob
import os
import os.path as osp

PREFIX = 'mmdet_gghost::'


def package_configs_dir() -> str:
    """The folder ``mmdet_gghost::`` names are relative to: the package's
    ``.mim/configs``, else (a checkout on ``PYTHONPATH``, an older editable
    install) the checkout's ``configs/``."""
    package = osp.dirname(osp.abspath(__file__))
    shipped = osp.join(package, '.mim', 'configs')
    if osp.isdir(shipped):
        return shipped
    checkout = osp.dirname(package)
    if osp.isfile(osp.join(checkout, 'model-index.yml')) and osp.isdir(
            osp.join(checkout, 'configs')):
        return osp.join(checkout, 'configs')
    raise FileNotFoundError(
        f'mmdet_gghost at {package} has no configs ({shipped} is missing): '
        'it was installed without them. Reinstall it from a wheel or a '
        'checkout (pip install mmdet-gghost, or pip install -e . in a '
        'clone), which puts them there.')


def shipped_configs(root=None):
    """Relative paths (``'imagenet/x.py'``) of every ``.py`` config."""
    root = root or package_configs_dir()
    return sorted(path.replace(os.sep, '/') for path in
                  glob.glob('**/*.py', root_dir=root, recursive=True))


def resolve_config(name: str) -> str:
    """The file of ``mmdet_gghost::<name>`` (``name`` with or without the
    prefix); FileNotFoundError naming the closest ones if there is none."""
    if name.startswith(PREFIX):
        name = name[len(PREFIX):]
    root = package_configs_dir()
    path = osp.normpath(osp.join(root, name))
    if osp.isfile(path) and path.startswith(osp.normpath(root) + os.sep):
        return path
    close = difflib.get_close_matches(name, shipped_configs(root), n=3)
    hint = (f' Did you mean {", ".join(PREFIX + c for c in close)}?'
            if close else ' The configs are listed by `mim search '
            'mmdet_gghost --valid-config` and in model-index.yml.')
    raise FileNotFoundError(
        f'{PREFIX}{name}: no such config in {root}.{hint}')


def enable_package_bases() -> None:
    """Let ``Config.fromfile`` resolve ``mmdet_gghost::<config>`` bases:
    wraps the static method ``Config._get_cfg_path`` once (idempotent),
    other paths go to mmengine's own method unchanged."""
    from mmengine.config import Config
    original = Config.__dict__['_get_cfg_path'].__func__
    if getattr(original, '_mmdet_gghost_bases', False):
        return

    def _get_cfg_path(cfg_path, filename):
        if isinstance(cfg_path, str) and cfg_path.startswith(PREFIX):
            return resolve_config(cfg_path), None
        return original(cfg_path, filename)

    _get_cfg_path._mmdet_gghost_bases = True
    _get_cfg_path.__wrapped__ = original
    Config._get_cfg_path = staticmethod(_get_cfg_path)
