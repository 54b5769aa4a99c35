"""tools/gpu/deploy_matrix.py: importable on the GPU machine before the
OpenMMLab wheels are in place, timed by the project's one timing core, and
its ``--dry-run`` end to end on the CPU (small shapes, one benchmark row)."""
import json
import sys

import pytest
import torch

from tools_helpers import load_tool

OPENMMLAB = ('mmdet', 'mmengine', 'mmcv', 'mmpretrain', 'mmdeploy')


@pytest.fixture
def tool(monkeypatch):
    """The script as a module; the checkout it puts first on sys.path is
    taken off again after the test."""
    monkeypatch.setattr(sys, 'path', list(sys.path))
    return load_tool('gpu/deploy_matrix.py')


def test_imports_without_the_openmmlab_stack(monkeypatch):
    monkeypatch.setattr(sys, 'path', list(sys.path))
    for name in OPENMMLAB:  # `import mmdet` etc. now raise ImportError
        monkeypatch.setitem(sys.modules, name, None)
    tool = load_tool('gpu/deploy_matrix.py')
    assert tool.timing.__file__.endswith('mmdet_gghost/benchmark/timing.py')


def test_latency_comes_from_the_timing_core(tool, monkeypatch):
    calls = []
    core = tool.timing.time_interleaved

    def spy(callables, rounds, **kwargs):
        calls.append(rounds)
        return core(callables, rounds, **kwargs)

    monkeypatch.setattr(tool.timing, 'time_interleaved', spy)
    ms = tool.median_latency_ms(lambda: torch.ones(8).sum(), lambda: None,
                                n=5)
    assert calls == [5] and 0 < ms < 1e3


def test_dry_run_on_the_cpu(tool, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # main() moves to the checkout
    threads = torch.get_num_threads()  # and may lower the CPU threads
    try:
        tool.main(['--dry-run', '--out', str(tmp_path / 'out'), '--only',
                   'backbone_bs1_fp32_deploy', 'backbone_bs1_fp32_graphs',
                   'train_bs2_fp32_eager', 'train_bs2_amp_eager',
                   'full_bs1_fp32_deploy'])
    finally:
        torch.set_num_threads(threads)
    profiles = json.loads((tmp_path / 'out' / 'profile.json').read_text())
    assert {(p['arch'], p['batch']) for p in profiles} == {
        (a, b) for a in ('resnet34', 'gghost_resnet34', 'resnet34-plain')
        for b in (1, 2)}
    assert all(p['median_ms'] > 0 and p['aten_ops'] > 0 for p in profiles)
    bench = json.loads((tmp_path / 'out' / 'backbone_bs1_fp32_deploy' /
                        'benchmark.json').read_text())
    assert [r['name'] for r in bench['results']] == ['R34', 'G-Ghost-R34', 'R34-plain']
    assert all(r['median_ms'] > 0 and r['outputs_finite']
               for r in bench['results'])
    # the CUDA-graph and AMP rows are skipped on the CPU
    assert not (tmp_path / 'out' / 'backbone_bs1_fp32_graphs').exists()
    assert not (tmp_path / 'out' / 'train_bs2_amp_eager').exists()
    train = json.loads((tmp_path / 'out' / 'train_bs2_fp32_eager' /
                        'benchmark.json').read_text())
    assert train['settings']['task'] == 'train'
    assert [r['batch_size'] for r in train['results']] == [2, 2, 2]
    assert all(r['median_ms'] > 0 and r['first_losses']['loss_bbox'] > 0
               for r in train['results'])
    rows = {r['label']: r for r in json.loads(
        (tmp_path / 'out' / 'summary.json').read_text())['rows']}
    row = rows['backbone_bs1_fp32_deploy']
    assert row['plain_ms'] > 0 and row['latency_ratio_plain'] == \
        pytest.approx(row['gghost_ms'] / row['plain_ms'])
    # same network, same ops: mmdet's fused ResNet-34 and ours
    assert row['plain_ops'] == row['r34_ops'] < row['gghost_ops']
    summary = (tmp_path / 'out' / 'summary.md').read_text()
    # the full-detector row says where each model's time goes
    section = summary.split('## full_bs1_fp32_deploy: where the time goes')
    assert len(section) == 2 and '## train' not in summary
    assert [ln.split(' | ')[0] for ln in section[1].splitlines()
            if ln.startswith('| ') and 'ms' not in ln] == [
        '| R34', '| G-Ghost-R34', '| R34-plain']


def test_a_crashing_isolated_row_costs_that_row_alone(tool, tmp_path,
                                                      capsys):
    """A row run in a child process that segfaults is recorded (exit code,
    the child's output with faulthandler's stack in <row>/crash.txt) and
    shows in the summary table; a child that finishes hands its rows back
    through the summary.json it wrote."""
    args = tool.parse_args(['--out', str(tmp_path)])
    crash = [sys.executable, '-X', 'faulthandler', '-c',
             'import ctypes; ctypes.string_at(0)']
    rows = tool.run_isolated(args, 'backbone_bs8_ampcl_graphs', crash)
    assert len(rows) == 1 and rows[0]['crashed'] != 0
    log = (tmp_path / 'backbone_bs8_ampcl_graphs' / 'crash.txt').read_text()
    assert 'Segmentation fault' in log and 'ctypes' in log
    assert 'CRASHED' in capsys.readouterr().out
    line = tool._summary_row(rows[0])
    assert line.startswith('| backbone_bs8_ampcl_graphs | crashed: exit '
                           'code') and line.count('|') == 13
    done = [sys.executable, '-c',
            'import json, sys; json.dump({"rows": [{"label": "x"}]}, '
            f'open({str(tmp_path / "summary.json")!r}, "w"))']
    assert tool.run_isolated(args, 'x', done) == [{'label': 'x'}]


def test_isolated_rows_run_last_and_cuda_ones_are_skipped_on_the_cpu(
        tool, monkeypatch, tmp_path):
    order = []
    monkeypatch.setattr(tool, 'run_matrix',
                        lambda args, device, rows: order.extend(
                            r[0] for r in rows) or [])
    monkeypatch.setattr(tool, 'run_isolated',
                        lambda args, label: order.append(('child', label))
                        or [])
    monkeypatch.setattr(tool, 'write_summary', lambda *a: None)
    threads = torch.get_num_threads()
    try:
        tool.main(['--dry-run', '--skip-profile', '--out', str(tmp_path),
                   '--only', 'backbone_bs8_ampcl_graphs',
                   'backbone_bs1_fp32_deploy'])
    finally:
        torch.set_num_threads(threads)
    # on the CPU the CUDA-only isolated row is skipped by run_matrix, no
    # child is started for it
    assert order == ['backbone_bs1_fp32_deploy', 'backbone_bs8_ampcl_graphs']
    monkeypatch.setattr(tool.torch.cuda, 'is_available', lambda: True)
    order.clear()
    tool.main(['--skip-profile', '--out', str(tmp_path), '--only',
               'backbone_bs8_ampcl_graphs', 'full_bs1_fp32_deploy'])
    assert order == ['full_bs1_fp32_deploy',
                     ('child', 'backbone_bs8_ampcl_graphs')]
