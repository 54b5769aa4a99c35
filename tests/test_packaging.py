"""mmdet-gghost as an installed OpenMMLab package: the wheel carries the
configs, tools and metafiles (``mmdet_gghost/.mim``), a user's config in
another folder inherits ours (``mmdet_gghost::``), the metafiles list every
config with the complexity tool's numbers, and a wrong OpenMMLab stack is
one clear ImportError."""
import contextlib
import glob
import io
import json
import os
import os.path as osp
import shutil
import subprocess
import sys
import textwrap
import zipfile

import pytest
from mmengine.config import Config

import mmdet_gghost
from mmdet_gghost.compat import check_versions
from mmdet_gghost.config_bases import (enable_package_bases,
                                       package_configs_dir, resolve_config)
from mmdet_gghost.version import SUPPORTED_VERSIONS, requirement
from tools_helpers import load_tool

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
# what an sdist needs (MANIFEST.in picks from it)
SOURCE = ('setup.py', 'MANIFEST.in', 'README.md', 'model-index.yml',
          'requirements', 'mmdet_gghost', 'configs', 'tools')
NOT_SOURCE = shutil.ignore_patterns('__pycache__', '*.pyc', '.mim',
                                    '*.egg-info')
# Every classifier and demo config (small inputs, ~1 s each) and the paper's
# detector are counted on every run; the other COCO detectors (~10 s each
# at 800x1333) with MMDET_GGHOST_METAFILE_CHECK=all (or run
# tools/misc/gen_metafiles.py --check).
COCO_COUNTED_EVERY_RUN = ('retinanet_gghost_r34_1x_coco.py', )


def _run(cmd, **kwargs):
    result = subprocess.run(cmd, capture_output=True, text=True, **kwargs)
    assert result.returncode == 0, (
        f'{cmd} failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}')
    return result


def _files_under(folder):
    """Relative paths of the files a package build copies from ``folder``."""
    found = []
    for root, dirs, files in os.walk(osp.join(REPO, folder)):
        dirs[:] = [d for d in dirs if d != '__pycache__']
        found += [osp.relpath(osp.join(root, f), REPO) for f in files
                  if not f.endswith('.pyc')]
    return sorted(found)


@pytest.fixture(scope='module')
def wheel(tmp_path_factory):
    """sdist of a copy of the checkout, then a wheel built from that sdist
    (what `pip install mmdet-gghost` from an index would build)."""
    tmp = tmp_path_factory.mktemp('build')
    src = tmp / 'src'
    for name in SOURCE:
        path = osp.join(REPO, name)
        if osp.isdir(path):
            shutil.copytree(path, src / name, ignore=NOT_SOURCE)
        else:
            os.makedirs(src, exist_ok=True)
            shutil.copy(path, src / name)
    _run([sys.executable, 'setup.py', '-q', 'sdist', '-d', str(tmp / 'sdist')],
         cwd=src)
    sdist, = glob.glob(str(tmp / 'sdist' / '*.tar.gz'))
    _run([sys.executable, '-m', 'pip', 'wheel', '-q', '--no-deps',
          '--no-build-isolation', sdist, '-w', str(tmp / 'wheels')])
    built, = glob.glob(str(tmp / 'wheels' / '*.whl'))
    return built


@pytest.fixture(scope='module')
def site(wheel, tmp_path_factory):
    """The wheel installed (not editable) into a folder of its own."""
    target = tmp_path_factory.mktemp('site')
    _run([sys.executable, '-m', 'pip', 'install', '-q', '--no-deps',
          '--no-compile', '--target', str(target), wheel])
    return str(target)


def test_wheel_ships_every_config_tool_and_metafile(wheel):
    with zipfile.ZipFile(wheel) as zf:
        names = set(zf.namelist())
        shipped = _files_under('configs') + _files_under('tools') + [
            'model-index.yml']
        assert len(shipped) > 60
        for rel in shipped:
            name = f'mmdet_gghost/.mim/{rel}'
            assert name in names, f'{rel} is not in the wheel'
            with open(osp.join(REPO, rel), 'rb') as f:
                assert zf.read(name) == f.read(), f'{rel} differs'
        assert not [n for n in names if '__pycache__' in n]
        metadata = zf.read(next(n for n in names
                                if n.endswith('.dist-info/METADATA')))
    # one version source for the package, the wheel and its requirements
    assert osp.basename(wheel).startswith(
        f'mmdet_gghost-{mmdet_gghost.__version__}-')
    requires = [line.split(': ', 1)[1]
                for line in metadata.decode().splitlines()
                if line.startswith('Requires-Dist: ') and 'extra' not in line]
    for package in SUPPORTED_VERSIONS:
        low, high = SUPPORTED_VERSIONS[package]
        assert any(r.replace(' ', '').startswith(package) and f'>={low}' in r
                   and f'<{high}' in r for r in requires), (package, requires)


USER_SCRIPT = '''
import json, os, sys
from mmengine.config import Config
import mmdet_gghost
out = dict(package=mmdet_gghost.__file__)
try:  # mmengine alone does not know the prefix
    Config.fromfile('my_retinanet.py')
    out['plain_mmengine'] = 'resolved'
except (AssertionError, ValueError) as error:
    out['plain_mmengine'] = type(error).__name__
mmdet_gghost.enable_package_bases()
det = Config.fromfile('my_retinanet.py')
cls = Config.fromfile('my_classifier.py')
from mmdet_gghost.apis import build_model
detector, classifier = build_model(det), build_model(cls)
out.update(
    det_base=mmdet_gghost.config_bases.resolve_config(
        'retinanet_gghost_r34_1x_coco.py'),
    det_classes=detector.bbox_head.num_classes,
    det_backbone=type(detector.backbone).__name__,
    det_imports=det.custom_imports['imports'],
    cls_classes=classifier.head.num_classes,
    cls_backbone=type(classifier.backbone).__name__,
    cls_scope=cls.default_scope)
print(json.dumps(out))
'''


def test_user_project_inherits_installed_configs(site, tmp_path):
    """A config in the user's own folder, the package installed from the
    wheel: ``mmdet_gghost::`` bases resolve into the installed copy (with
    their own ``mmdet::`` / ``mmpretrain::`` bases) and build."""
    project = tmp_path / 'my_project'
    project.mkdir()
    (project / 'my_retinanet.py').write_text(
        "_base_ = 'mmdet_gghost::retinanet_gghost_r34_1x_coco.py'\n"
        'model = dict(bbox_head=dict(num_classes=3))\n')
    (project / 'my_classifier.py').write_text(
        "_base_ = 'mmdet_gghost::imagenet/gghost-resnet34_8xb32_in1k.py'\n"
        'model = dict(head=dict(num_classes=10))\n')
    (project / 'run.py').write_text(USER_SCRIPT)
    env = dict(os.environ, PYTHONPATH=site, OMP_NUM_THREADS='1')
    result = _run([sys.executable, 'run.py'], cwd=project, env=env)
    out = json.loads(result.stdout.strip().splitlines()[-1])
    installed = osp.join(site, 'mmdet_gghost')
    assert out['package'].startswith(installed)  # not the checkout
    assert out['plain_mmengine'] in ('AssertionError', 'ValueError')
    assert out['det_base'] == osp.join(installed, '.mim', 'configs',
                                       'retinanet_gghost_r34_1x_coco.py')
    assert (out['det_classes'], out['det_backbone']) == (3, 'GGhostResNet')
    assert out['det_imports'] == ['mmdet_gghost']
    assert (out['cls_classes'], out['cls_backbone']) == (10, 'GGhostResNet')
    assert out['cls_scope'] == 'mmpretrain'


def test_checkout_resolves_package_bases_and_names(tmp_path):
    """In a clone (no .mim needed) our loader takes the same bases, and a
    shipped config by its ``mmdet_gghost::`` name."""
    from mmdet_gghost.apis.build import load_config
    user = tmp_path / 'user.py'
    user.write_text("_base_ = 'mmdet_gghost::retinanet_gghost_r34_1x_coco.py'"
                    '\nmodel = dict(bbox_head=dict(num_classes=5))\n')
    cfg = load_config(user)
    assert cfg.model.bbox_head.num_classes == 5
    assert cfg.model.backbone.type == 'GGhostResNet'
    assert package_configs_dir() in (
        osp.join(REPO, 'configs'),
        osp.join(REPO, 'mmdet_gghost', '.mim', 'configs'))
    cfg = load_config('mmdet_gghost::imagenet/resnet34_8xb32_in1k.py')
    assert cfg.default_scope == 'mmpretrain'


def test_unknown_package_config_names_close_matches(tmp_path):
    user = tmp_path / 'user.py'
    user.write_text("_base_ = 'mmdet_gghost::retinanet_gghost_r34_coco.py'\n")
    enable_package_bases()
    with pytest.raises(FileNotFoundError,
                       match=r'mmdet_gghost::retinanet_gghost_r34_coco\.py: '
                       r'no such config .* Did you mean '
                       r'mmdet_gghost::retinanet_gghost_r34_1x_coco\.py'):
        Config.fromfile(user)
    with pytest.raises(FileNotFoundError, match='no such config'):
        resolve_config('../setup.py')  # only files under the configs


def test_enabling_bases_twice_wraps_mmengine_once():
    enable_package_bases()
    enable_package_bases()
    method = Config.__dict__['_get_cfg_path'].__func__
    assert method._mmdet_gghost_bases
    assert not getattr(method.__wrapped__, '_mmdet_gghost_bases', False)


# --------------------------------------------------------------------------
# metafiles
# --------------------------------------------------------------------------
def _gen_metafiles():
    return load_tool('misc/gen_metafiles.py')


def _metafile_models():
    """``config -> model entry`` over model-index.yml's metafiles, read with
    modelindex, the library `mim search` reads them with."""
    from modelindex.load_model_index import load
    index = load(osp.join(REPO, 'model-index.yml'))
    collections = {c.name for c in index.collections}
    models = {}
    for model in index.models:
        assert model.in_collection in collections, model.name
        assert model.config not in models, f'{model.config} listed twice'
        assert model.name == osp.splitext(osp.basename(model.config))[0]
        assert not getattr(model, 'weights', None)  # none released
        models[model.config] = model
    return models


def test_metafiles_list_every_model_config_and_only_existing_ones():
    listed = set(_metafile_models())
    shipped = {f'configs/{c}' for c in _gen_metafiles().model_configs()}
    assert len(shipped) >= 30  # detectors, classifiers, demos
    assert shipped - listed == set(), 'configs missing from the metafiles'
    assert listed - shipped == set(), 'metafile entries without a config'


def _counted_configs():
    gen = _gen_metafiles()
    configs = [c for c in gen.model_configs() if c not in gen.NOT_COUNTED]
    if os.environ.get('MMDET_GGHOST_METAFILE_CHECK') == 'all':
        return configs
    return [c for c in configs if c in COCO_COUNTED_EVERY_RUN
            or c.split('/')[0] in ('imagenet', 'demo')]


@pytest.mark.parametrize('config', _counted_configs())
def test_metafile_params_and_flops_are_the_complexity_tools(config):
    meta = _metafile_models()[f'configs/{config}'].metadata.data
    h, w = map(int, meta['Input Size'].split('x'))
    tool = load_tool('analysis/complexity.py')
    with contextlib.redirect_stdout(io.StringIO()):
        report = tool.main([osp.join(REPO, 'configs', config), '--shape',
                            str(h), str(w)])
    assert meta['Parameters'] == report['total']['params']
    assert meta['FLOPs'] == report['total']['macs']


def test_every_counted_entry_states_its_numbers_and_input():
    gen = _gen_metafiles()
    for config, model in _metafile_models().items():
        meta = model.metadata.data
        rel = config[len('configs/'):]
        if rel in gen.NOT_COUNTED:
            assert 'FLOPs' not in meta and 'not counted' in meta['Complexity']
            continue
        assert meta['Parameters'] > 0 and meta['FLOPs'] > 0, config
        expected = {'imagenet': '224x224', 'demo': None}.get(
            rel.split('/')[0], '800x1333')
        if expected:  # the paper's input size
            assert meta['Input Size'] == expected, config


def test_metafile_results_name_their_source():
    for config, model in _metafile_models().items():
        if getattr(model, 'results', None):
            source = model.metadata.data['Results Source']
            assert osp.isfile(osp.join(REPO, source.split(' ')[0])), config


# --------------------------------------------------------------------------
# versions
# --------------------------------------------------------------------------
GOOD = dict(mmengine='0.10.7', mmcv='2.1.0', mmdet='3.3.0',
            mmpretrain='1.2.0')


def test_version_check_names_each_bad_package_and_the_fix():
    check_versions(GOOD)
    check_versions(dict(GOOD, mmpretrain=None))  # optional
    with pytest.raises(ImportError) as info:
        check_versions(dict(GOOD, mmcv='2.2.0', mmdet='3.0.0'))
    message = str(info.value)
    assert 'mmcv==2.2.0 is installed, mmdet_gghost ' in message
    assert 'needs mmcv>=2.0.0,<2.2.0' in message
    assert 'mmdet==3.0.0 is installed' in message
    assert 'pip install "mmcv>=2.0.0,<2.2.0" "mmdet>=3.1.0,<3.4.0"' in message
    with pytest.raises(ImportError, match='mmengine is not installed'):
        check_versions(dict(GOOD, mmengine=None))


def test_version_check_reads_the_installed_modules(monkeypatch):
    import mmdet
    check_versions()
    monkeypatch.setattr(mmdet, '__version__', '3.4.0')
    with pytest.raises(ImportError, match=r'mmdet==3\.4\.0 is installed'):
        check_versions()


def test_import_fails_early_on_an_unsupported_mmcv(tmp_path):
    """At ``import mmdet_gghost``, before mmdet (whose own mmcv assert would
    fire first) is imported."""
    script = textwrap.dedent('''
        import sys
        import mmcv
        mmcv.__version__ = '2.2.0'
        try:
            import mmdet_gghost
        except ImportError as error:
            print('ImportError:', error)
        print('mmdet imported:', 'mmdet' in sys.modules)
    ''')
    env = dict(os.environ, PYTHONPATH=REPO, OMP_NUM_THREADS='1')
    out = _run([sys.executable, '-c', script], cwd=tmp_path, env=env).stdout
    assert 'ImportError: mmdet_gghost cannot run' in out
    assert requirement('mmcv') in out
    assert 'mmdet imported: False' in out


# --------------------------------------------------------------------------
# Makefile
# --------------------------------------------------------------------------
@pytest.mark.skipif(shutil.which('make') is None, reason='needs make')
@pytest.mark.parametrize('scale, expected', [
    ('', None), ('6 4', ['--paper-scale', '6', '4'])])
def test_make_demo_paper_passes_paper_scale_to_the_demo(scale, expected):
    """``make demo-paper PAPER_SCALE="6 4"`` reaches tools/demo.py; left
    empty, the demo's own default applies (no flag)."""
    out = subprocess.run(
        ['make', '-n', '-C', REPO, 'demo-paper', f'PAPER_SCALE={scale}'],
        capture_output=True, text=True, check=True).stdout
    line = out.replace('\\\n', ' ').splitlines()
    argv = next(x for x in line if 'tools/demo.py' in x).split()
    assert argv[argv.index('--seeds'):][:3] == ['--seeds', '0', '1']
    if expected is None:
        assert '--paper-scale' not in argv
    else:
        i = argv.index('--paper-scale')
        assert argv[i:i + 3] == expected
