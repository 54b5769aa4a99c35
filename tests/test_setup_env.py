"""The pinned stack `make setup` installs, and its mmcv wheel cache."""
import json
import subprocess
import sys
from importlib import metadata
from pathlib import Path
from urllib.parse import unquote, urlparse

import pytest
import torch

from tools_helpers import load_tool

REPO = Path(__file__).resolve().parents[1]
# loaded by file name: sys.path stays as it was for the rest of the run
setup_env = load_tool('setup_env.py')


# Environment check: the installed stack matches the pins.
@pytest.mark.env_check
def test_pinned_versions_are_installed():
    pins = dict(p.split('==') for p in setup_env.read_pins())
    pins.update(p.split('==') for p in setup_env.TORCH_PINS)
    for name, version in pins.items():
        assert metadata.version(name).split('+')[0] == version, name
    assert metadata.version('mmcv') == setup_env.MMCV_VERSION
    major = int(metadata.version('setuptools').split('.')[0])
    assert 77 <= major < 82  # torch needs >= 77; mmengine needs pkg_resources
    import pkg_resources  # noqa: F401  (mmengine resolves mmdet:: with it)


# Environment check: mmcv's compiled ops work (no project code).
@pytest.mark.env_check
def test_mmcv_ops_run_on_cpu():
    from mmcv.ops import RoIAlign, nms
    boxes = torch.tensor([[0, 0, 10, 10], [1, 1, 10, 10], [20, 20, 30, 30.]])
    scores = torch.tensor([0.9, 0.8, 0.7])
    dets, keep = nms(boxes, scores, iou_threshold=0.5)
    assert keep.tolist() == [0, 2]
    assert dets.shape == (2, 5)
    feat = torch.arange(16.).view(1, 1, 4, 4)
    out = RoIAlign((2, 2), 1.0, 0)(feat, torch.tensor([[0, 0, 0, 4, 4.]]))
    assert out.shape == (1, 1, 2, 2)


# Environment check: stock mmdet trains (no project code).
@pytest.mark.env_check
def test_stock_mmdet_retinanet_takes_a_train_step():
    from mmdet.registry import MODELS
    from mmdet.testing import demo_mm_inputs
    from mmdet.utils import register_all_modules
    from mmengine.hub import get_config
    register_all_modules()
    cfg = get_config('mmdet::retinanet/retinanet_r18_fpn_1x_coco.py')
    cfg.model.backbone.init_cfg = None
    model = MODELS.build(cfg.model)
    model.train()
    packed = demo_mm_inputs(2, [[3, 128, 128]] * 2, num_items=[2, 2])
    data = model.data_preprocessor(packed, True)
    loss, _ = model.parse_losses(model(**data, mode='loss'))
    loss.backward()
    grads = [p.grad for p in model.bbox_head.parameters() if p.requires_grad]
    assert torch.isfinite(loss) and all(g is not None for g in grads)


def test_cache_key_names_every_version():
    key = setup_env.mmcv_cache_key('2.1.0', '2.14.1+cu130', '3.11', 'x86_64')
    assert key == 'mmcv-2.1.0_torch-2.14.1_py-3.11_x86_64'
    assert setup_env.mmcv_cache_key('2.1.0', '2.13.0') != key


def test_patch_mmcv_source_switches_to_cxx20(tmp_path):
    (tmp_path / 'setup.py').write_text(
        "extra = ['-std=c++17']\nother = ['-std=c++14', '-O3']\n")
    assert setup_env.patch_mmcv_source(tmp_path) == 2
    text = (tmp_path / 'setup.py').read_text()
    assert '-std=c++20' in text and 'c++17' not in text and 'c++14' not in text


def _installed_mmcv_wheel():
    dist = metadata.distribution('mmcv')
    direct_url = json.loads(dist.read_text('direct_url.json'))
    return Path(unquote(urlparse(direct_url['url']).path))


def test_installed_mmcv_comes_from_the_version_keyed_cache():
    wheel = _installed_mmcv_wheel()
    key = setup_env.mmcv_cache_key(setup_env.MMCV_VERSION,
                                   torch.__version__)
    assert wheel.parent.name == key
    if not wheel.is_file():  # set-up keeps a working mmcv without its wheel
        pytest.skip(f'the wheel mmcv was installed from is gone ({wheel}: '
                    'cache cleaned, or another HOME); nothing to check')
    assert setup_env.find_cached_wheel(wheel.parent.parent, key) == wheel
    assert REPO not in wheel.parents  # the cache lives outside the repo


def _this_venv_is_set_up_for_this_checkout():
    """Why the real set-up cannot be re-run on the interpreter running the
    tests without changing it, or ``None``."""
    if sys.prefix == sys.base_prefix:
        return 'the tests do not run in a virtualenv'
    if sys.version_info[:2] != (3, 11):
        return 'tools/setup_env.py runs with Python 3.11 only'
    import mmdet_gghost
    if REPO not in Path(mmdet_gghost.__file__).resolve().parents:
        return 'mmdet_gghost is imported from another checkout'
    pins = setup_env.read_pins() + list(setup_env.TORCH_PINS)
    missing = setup_env.unmet(pins, setup_env.Venv(sys.prefix).installed())
    if missing:
        return f'the venv lacks pins (set-up would install): {missing}'
    return None


def test_second_setup_without_a_wheel_cache_builds_nothing(tmp_path):
    """The real set-up script on the venv running the tests, with an empty
    wheel cache (a new HOME, a cleaned cache): every step must find its work
    done and keep the installed mmcv instead of building it again."""
    reason = _this_venv_is_set_up_for_this_checkout()
    if reason:
        pytest.skip(f're-runs the real set-up on this venv: {reason}')
    before = metadata.distribution('mmcv').read_text('RECORD')
    proc = subprocess.run(
        [sys.executable, str(REPO / 'tools' / 'setup_env.py'), '--venv',
         sys.prefix, '--cache-dir', str(tmp_path / 'empty-cache'),
         '--log-dir', str(tmp_path / 'logs')],
        capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert 'nothing to install or build' in proc.stdout, proc.stdout
    assert 'compiled ops already installed' in proc.stdout, proc.stdout
    for busy in ('building mmcv', 'cached wheel', 'installing torch',
                 'creating virtualenv', 'pinned packages', 'build tools'):
        assert busy not in proc.stdout, proc.stdout
    assert metadata.distribution('mmcv').read_text('RECORD') == before
    assert not (tmp_path / 'empty-cache').exists()


class FakeVenv:
    """A venv whose mmcv state the test sets; ``pip install`` of a wheel
    installs mmcv 2.1.0 with its ops."""

    def __init__(self, path, mmcv=None, ops=False):
        self.path = Path(path)
        self.mmcv, self.ops = mmcv, ops

    def installed(self):
        return {'mmcv': self.mmcv} if self.mmcv else {}

    def query(self, code):
        assert code == 'import mmcv._ext', code
        return '' if self.mmcv and self.ops else None

    def pip(self, *args):
        return ['pip', *args]


@pytest.fixture
def fake_steps(monkeypatch):
    """Records the mmcv builds and installs instead of doing them."""
    calls = []

    def build(venv, out_dir, log_dir):
        calls.append('build')
        out_dir.mkdir(parents=True)
        wheel = out_dir / 'mmcv-2.1.0-cp311-cp311-linux_x86_64.whl'
        wheel.write_bytes(b'')
        return wheel

    def run(cmd, step, log_dir, env=None):
        calls.append(step)
        venv = run.venv
        venv.mmcv, venv.ops = setup_env.MMCV_VERSION, True

    monkeypatch.setattr(setup_env, 'build_mmcv_wheel', build)
    monkeypatch.setattr(setup_env, 'run', run)
    return calls, run


@pytest.mark.parametrize('mmcv,ops,cached,expected,says', [
    ('2.1.0', True, False, [], 'compiled ops already installed'),
    ('2.1.0', True, True, [], 'compiled ops already installed'),
    ('2.1.0', False, True, ['mmcv-install'], 'without its compiled ops'),
    ('2.2.0', True, True, ['mmcv-install'], 'mmcv 2.2.0 is installed'),
    (None, False, False, ['build', 'mmcv-install'], 'mmcv is not installed'),
    ('2.1.0', False, False, ['build', 'mmcv-install'], 'building mmcv'),
])
def test_ensure_mmcv_builds_only_when_the_installed_one_will_not_do(
        tmp_path, capsys, fake_steps, mmcv, ops, cached, expected, says):
    calls, run = fake_steps
    venv = run.venv = FakeVenv(tmp_path / 'venv', mmcv, ops)
    key = setup_env.mmcv_cache_key(setup_env.MMCV_VERSION, '2.14.1')
    if cached:
        (tmp_path / 'cache' / key).mkdir(parents=True)
        (tmp_path / 'cache' / key / 'mmcv-2.1.0-x.whl').write_bytes(b'')
    wheel, built = setup_env.ensure_mmcv(venv, tmp_path / 'cache',
                                         tmp_path / 'logs', '2.14.1')
    assert calls == expected
    assert built == ('build' in expected)
    assert (wheel is None) == (expected == [])
    assert says in capsys.readouterr().out
    assert venv.mmcv == setup_env.MMCV_VERSION and venv.ops


def test_installed_mmcv_probe_runs_the_venv_python(tmp_path):
    """The probe asks the venv's own interpreter (here: the one running the
    tests, whose mmcv is importable) and agrees with this process."""
    venv = setup_env.Venv(tmp_path)
    venv.python = Path(sys.executable)
    import importlib.util
    has_ops = importlib.util.find_spec('mmcv._ext') is not None
    version = metadata.version('mmcv')
    problem = setup_env.installed_mmcv_problem(venv)
    if version == setup_env.MMCV_VERSION and has_ops:
        assert problem is None
    else:
        assert problem is not None and 'mmcv' in problem


def _ready_state():
    """A :meth:`Venv.probe` answer for a venv holding every pin."""
    pins = [p.split('==') for p in
            (*setup_env.TORCH_PINS, *setup_env.read_pins())]
    installed = {name.lower().replace('_', '-'): version
                 for name, version in pins}
    installed.update({'setuptools': '80.9.0', 'wheel': '0.45.1',
                      'mmcv': setup_env.MMCV_VERSION, 'mmdet-gghost': '0.1'})
    return dict(installed=installed, mmcv_ops=True,
                package=str(REPO / 'mmdet_gghost' / '__init__.py'),
                stack='2.14.1 2.1.0 0.10.7 3.3.0 1.2.0 1.3.1')


@pytest.mark.parametrize('change,says', [
    ({}, None),
    (dict(mmcv_ops=False), 'without its compiled ops'),
    (dict(package='/elsewhere/mmdet_gghost/__init__.py'), 'editable'),
    (dict(stack=None), 'does not import'),
    (dict(installed={'setuptools': '82.0.0'}), 'build tools'),
    (dict(installed={'torch': '2.13.0'}), 'torch==2.14.1'),
    (dict(installed={'mmcv': '2.2.0'}), 'mmcv 2.2.0 is installed'),
])
def test_a_warm_venv_is_ready_only_when_no_step_has_work(change, says):
    """The one-probe fast path of ``make setup`` returns only for a venv in
    which every step would find its work done."""
    state = _ready_state()
    state['installed'].update(change.pop('installed', {}))
    state.update(change)
    todo = setup_env.still_to_do(state)
    if says is None:
        assert todo == []
    else:
        assert len(todo) == 1 and says in todo[0], todo


def test_failed_step_names_itself_and_its_log(tmp_path):
    with pytest.raises(setup_env.StepError) as err:
        setup_env.run([sys.executable, '-c', 'import sys; sys.exit(3)'],
                      'demo-step', tmp_path)
    assert 'demo-step' in str(err.value)
    assert str(tmp_path / 'demo-step.log') in str(err.value)
