"""The pinned stack `make setup` installs, and its mmcv wheel cache."""
import json
import subprocess
import sys
from importlib import metadata
from pathlib import Path
from urllib.parse import unquote, urlparse

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / 'tools'))
import setup_env  # noqa: E402


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
    assert wheel.is_file()
    assert setup_env.find_cached_wheel(wheel.parent.parent, key) == wheel
    assert REPO not in wheel.parents  # the cache lives outside the repo


def test_second_setup_uses_the_cache_and_builds_nothing(tmp_path):
    """Runs the real set-up script again on the real venv: every step must
    find its work done; mmcv must come from the cache."""
    before = _installed_mmcv_wheel().stat().st_mtime
    proc = subprocess.run(
        ['python3.11', str(REPO / 'tools' / 'setup_env.py'), '--venv',
         str(REPO / '.venv'), '--log-dir', str(tmp_path)],
        capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert 'using cached wheel' in proc.stdout
    for busy in ('building mmcv', 'installing torch', 'creating virtualenv',
                 'pinned packages', 'build tools'):
        assert busy not in proc.stdout, proc.stdout
    assert _installed_mmcv_wheel().stat().st_mtime == before


def test_ensure_mmcv_never_builds_when_the_wheel_is_cached(monkeypatch,
                                                          tmp_path):
    def no_build(*args, **kwargs):
        raise AssertionError('must not build')

    monkeypatch.setattr(setup_env, 'build_mmcv_wheel', no_build)
    venv = setup_env.Venv(REPO / '.venv')
    wheel = _installed_mmcv_wheel()
    got, built = setup_env.ensure_mmcv(venv, wheel.parent.parent, tmp_path,
                                       torch.__version__)
    assert got == wheel and built is False


def test_failed_step_names_itself_and_its_log(tmp_path):
    with pytest.raises(setup_env.StepError) as err:
        setup_env.run([sys.executable, '-c', 'import sys; sys.exit(3)'],
                      'demo-step', tmp_path)
    assert 'demo-step' in str(err.value)
    assert str(tmp_path / 'demo-step.log') in str(err.value)
