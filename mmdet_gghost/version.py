"""The package version and the OpenMMLab versions it supports: the one
source for ``mmdet_gghost.__version__``, ``setup.py`` (which reads this
file without importing the package) and the check at import
(:mod:`mmdet_gghost.compat`).  Standard library only."""

__version__ = '0.1.0'

# package -> (lowest supported, first unsupported); tested with the pins of
# requirements/pinned.txt.  mmengine and mmcv are required; mmdet and
# mmpretrain are checked when installed (a detection- or classification-only
# user may lack the other one).
SUPPORTED_VERSIONS = {
    'mmengine': ('0.10.0', '0.11.0'),
    'mmcv': ('2.0.0', '2.2.0'),
    'mmdet': ('3.1.0', '3.4.0'),
    'mmpretrain': ('1.1.0', '1.3.0'),
}
REQUIRED_PACKAGES = ('mmengine', 'mmcv')


def requirement(package: str) -> str:
    """``'mmcv>=2.0.0,<2.2.0'``: the pip requirement of a supported range."""
    low, high = SUPPORTED_VERSIONS[package]
    return f'{package}>={low},<{high}'
