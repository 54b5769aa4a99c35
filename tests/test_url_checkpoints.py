"""Checkpoints from URLs (http://, torchvision:// ...) load with
``weights_only=True``: a malicious file served over HTTP runs nothing.

The files are served by a bounded HTTP server on 127.0.0.1 (a thread that
stops by itself); torch's hub cache goes to a temporary folder.
"""
import functools
import http.server
import os.path as osp
import threading

import pytest
import torch

import mmdet_gghost  # noqa: F401  (safe loading)
from mmdet_gghost.checkpoint import UnsafeCheckpointError


class WritesMarker:
    """Unpickling it would create ``path`` (stands for any code)."""

    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return open, (self.path, 'w')


@pytest.fixture
def served(tmp_path, monkeypatch):
    """``(serve_dir, base_url)``: files in serve_dir over HTTP until the
    test ends (no deadline: a slow child never meets a silent server)."""
    for var in ('no_proxy', 'NO_PROXY'):  # loopback only, never a proxy
        monkeypatch.setenv(var, '127.0.0.1')
    serve_dir = tmp_path / 'served'
    serve_dir.mkdir()
    handler = functools.partial(
        http.server.SimpleHTTPRequestHandler, directory=str(serve_dir))
    handler.log_message = lambda *args: None
    server = http.server.ThreadingHTTPServer(('127.0.0.1', 0), handler)
    server.timeout = 0.2
    stop = threading.Event()

    def serve():
        while not stop.is_set():
            server.handle_request()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield serve_dir, f'http://127.0.0.1:{server.server_address[1]}'
    finally:
        stop.set()
        thread.join(5)
        server.server_close()


@pytest.fixture
def hub_dir(tmp_path):
    old = torch.hub.get_dir()
    torch.hub.set_dir(str(tmp_path / 'hub'))
    yield tmp_path / 'hub'
    torch.hub.set_dir(old)


def _malicious(serve_dir, marker, name='evil.pth'):
    torch.save(dict(state_dict=dict(w=torch.ones(2)),
                    meta=WritesMarker(str(marker))), serve_dir / name)
    return name


def test_malicious_http_checkpoint_runs_nothing(served, hub_dir, tmp_path):
    from mmengine.runner.checkpoint import CheckpointLoader
    serve_dir, base = served
    marker = tmp_path / 'pwned'
    url = f'{base}/{_malicious(serve_dir, marker)}'
    with pytest.raises(UnsafeCheckpointError) as info:
        CheckpointLoader.load_checkpoint(url, map_location='cpu')
    assert not marker.exists()
    assert f'Refused to load checkpoint {url!r}' in str(info.value)
    assert 'io.open' in str(info.value)  # builtins.open's real name
    # downloaded to the hub cache, as torch/mmengine would
    assert osp.isfile(hub_dir / 'checkpoints' / 'evil.pth')


def test_named_schemes_go_through_the_safe_loader(served, hub_dir, tmp_path,
                                                  monkeypatch):
    """torchvision:// (our retinanet_r34 config), open-mmlab://, mmcls://
    name a URL; init_cfg=Pretrained reaches them inside mmengine."""
    from mmengine.runner import checkpoint as mm
    serve_dir, base = served
    marker = tmp_path / 'pwned'
    url = f'{base}/{_malicious(serve_dir, marker)}'
    for getter in ('get_torchvision_models', 'get_external_models',
                   'get_mmcls_models'):
        monkeypatch.setattr(mm, getter, lambda: dict(evil=url))
    for scheme in ('torchvision', 'open-mmlab', 'mmcls'):
        with pytest.raises(UnsafeCheckpointError, match=url):
            mm.CheckpointLoader.load_checkpoint(f'{scheme}://evil')
    layer = torch.nn.Linear(2, 2)
    with pytest.raises(UnsafeCheckpointError, match=url):
        mm.load_checkpoint(layer, 'torchvision://evil')
    assert not marker.exists()


def test_plain_url_checkpoint_still_loads(served, hub_dir):
    from mmengine.runner.checkpoint import _load_checkpoint
    serve_dir, base = served
    weights = dict(state_dict=dict(w=torch.arange(4.)), meta=dict(iter=3))
    torch.save(weights, serve_dir / 'good.pth')
    loaded = _load_checkpoint(f'{base}/good.pth', map_location='cpu')
    assert torch.equal(loaded['state_dict']['w'], torch.arange(4.))
    assert loaded['meta'] == dict(iter=3)


def test_test_tool_refuses_malicious_url(served, tmp_path, capsys,
                                        monkeypatch, tiny_det_config):
    """tools/test.py CONFIG http://.../x.pth: one error line, nothing run,
    no metrics written."""
    from tools_helpers import tool_error
    serve_dir, base = served
    marker = tmp_path / 'pwned'
    url = f'{base}/{_malicious(serve_dir, marker)}'
    config = tiny_det_config
    monkeypatch.setenv('TORCH_HOME', str(tmp_path / 'th'))
    code, err = tool_error('test.py', config, url, '--work-dir',
                           tmp_path / 'w', capsys=capsys)
    assert code != 0
    assert 'Traceback' not in err
    assert f'test.py: error: Refused to load checkpoint {url!r}' in err
    assert not marker.exists()
    assert not (tmp_path / 'w' / 'metrics.json').exists()


def test_benchmark_loads_a_url_checkpoint_as_test_py_does(
        served, hub_dir, tmp_path, tiny_det_config):
    """One URL-or-file rule: tools/benchmark.py --checkpoint http://...
    loads (safely) what tools/test.py loads, instead of 'not found'."""
    from mmdet_gghost.benchmark import BenchmarkSettings, load_model
    serve_dir, base = served
    config = tiny_det_config
    reference, _, _ = load_model(config)
    weights = {k: v + 0.5 if v.is_floating_point() else v
               for k, v in reference.state_dict().items()}
    torch.save(dict(state_dict=weights), serve_dir / 'det.pth')
    url = f'{base}/det.pth'
    BenchmarkSettings(checkpoints=[url]).validate([config])  # no error
    model, _, _ = load_model(config, url)
    for key, value in model.state_dict().items():
        assert torch.equal(value, weights[key]), key
    with pytest.raises(FileNotFoundError,
                       match='Checkpoint file not found: .*nope.pth'):
        BenchmarkSettings(checkpoints=[str(tmp_path / 'nope.pth')]
                          ).validate([config])
