import os
import os.path as osp
import shutil

from setuptools import find_packages, setup
from setuptools.command.build_py import build_py

HERE = osp.dirname(osp.abspath(__file__))
PACKAGE = 'mmdet_gghost'
# What OpenMMLab tooling looks up in <package>/.mim (as mmdet ships it):
# `mmdet_gghost::` config bases, `mim train/test` (tools/train.py,
# tools/test.py) and `mim search` (model-index.yml and the metafiles it
# imports). The top-level folders stay the source.
MIM_FILES = ('configs', 'tools', 'model-index.yml')
MIM_IGNORE = shutil.ignore_patterns('__pycache__', '*.pyc')


def read_version_file():
    """``mmdet_gghost/version.py`` without importing the package (whose
    import needs mmcv and friends)."""
    namespace = {}
    path = osp.join(HERE, PACKAGE, 'version.py')
    with open(path, encoding='utf-8') as f:
        exec(compile(f.read(), path, 'exec'), namespace)
    return namespace


def _remove(path):
    if osp.islink(path) or osp.isfile(path):
        os.remove(path)
    elif osp.isdir(path):
        shutil.rmtree(path)


def fill_mim(mim_dir, mode):
    """Put ``MIM_FILES`` into ``mim_dir``: ``'copy'`` (wheel, sdist build)
    or ``'symlink'`` (editable install: edits in configs/ show at once)."""
    os.makedirs(mim_dir, exist_ok=True)
    for name in MIM_FILES:
        src, dst = osp.join(HERE, name), osp.join(mim_dir, name)
        if not osp.exists(src):
            raise FileNotFoundError(f'{src} is missing; the package ships it')
        _remove(dst)
        if mode == 'symlink':
            os.symlink(osp.relpath(src, mim_dir), dst)
        elif osp.isdir(src):
            shutil.copytree(src, dst, ignore=MIM_IGNORE)
        else:
            shutil.copyfile(src, dst)


class BuildPyWithMim(build_py):
    """``build_py`` that also fills ``mmdet_gghost/.mim``: copied into the
    build directory for a wheel, symlinked in the source tree for an
    editable install (where the package is imported from the source)."""

    def run(self):
        super().run()
        if self.editable_mode:
            mode = 'copy' if os.name == 'nt' else 'symlink'
            fill_mim(osp.join(HERE, PACKAGE, '.mim'), mode)
        else:
            fill_mim(osp.join(self.build_lib, PACKAGE, '.mim'), 'copy')


VERSION = read_version_file()

setup(
    name='mmdet-gghost',
    version=VERSION['__version__'],
    description='G-GhostNet (IJCV 2022) backbones, RetinaNet configs and an '
    'FPS benchmark for mmdet and mmpretrain',
    packages=find_packages(include=[PACKAGE, f'{PACKAGE}.*']),
    cmdclass={'build_py': BuildPyWithMim},
    python_requires='>=3.9',
    install_requires=['torch>=2.0'] + [
        VERSION['requirement'](name) for name in VERSION['SUPPORTED_VERSIONS']
    ],
    extras_require={
        'deploy': ['onnx>=1.15', 'onnxruntime>=1.17', 'mmdeploy>=1.3.1,<1.4'],
        'tests': ['pytest'],
    },
)
