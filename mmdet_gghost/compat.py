"""The check at ``import mmdet_gghost``: installed OpenMMLab packages inside
the supported ranges of :mod:`mmdet_gghost.version`, compared with
``digit_version`` as mmdet compares mmcv's, so a wrong stack fails with one
error naming each package and the fix instead of deep inside a model."""
import importlib
from typing import Dict, Optional

from .version import (REQUIRED_PACKAGES, SUPPORTED_VERSIONS, __version__,
                      requirement)


def installed_versions(packages) -> Dict[str, Optional[str]]:
    """``package -> __version__`` (``None``: not installed), in order, up
    to the first that fails the check: mmdet asserts its own mmcv range on
    import, so it is not imported with an mmcv we know to be wrong."""
    versions = {}
    for package in packages:
        try:
            module = importlib.import_module(package)
        except ModuleNotFoundError as error:
            if error.name != package:  # installed but broken: show that
                raise
            versions[package] = None
            continue
        versions[package] = str(getattr(module, '__version__', '0'))
        if _problem(package, versions[package]):
            break
    return versions


def _problem(package: str, version: Optional[str]) -> Optional[str]:
    if version is None:
        return (f'{package} is not installed'
                if package in REQUIRED_PACKAGES else None)
    from mmengine.utils import digit_version
    low, high = SUPPORTED_VERSIONS[package]
    if digit_version(low) <= digit_version(version) < digit_version(high):
        return None
    return f'{package}=={version} is installed'


def check_versions(versions: Optional[Dict[str, Optional[str]]] = None
                   ) -> None:
    """Raise ``ImportError`` if a package is outside its supported range.
    ``versions``: ``package -> version`` (``None``: not installed); default:
    the installed packages' ``__version__``."""
    if versions is None:
        versions = installed_versions(SUPPORTED_VERSIONS)
    bad = [p for p, v in versions.items() if _problem(p, v)]
    if bad:
        found = '; '.join(f'{_problem(p, versions[p])}, mmdet_gghost '
                          f'{__version__} needs {requirement(p)}' for p in bad)
        fix = ' '.join(f'"{requirement(p)}"' for p in bad)
        raise ImportError(
            f'mmdet_gghost cannot run with the installed OpenMMLab stack: '
            f'{found}. Fix: pip install {fix} (the tested stack: '
            'requirements/pinned.txt).')
