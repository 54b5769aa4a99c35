"""Complexity counting (mmdet_gghost.analysis, tools/analysis/complexity.py).

Tiny models and inputs only; everything here runs in a few seconds.
"""
import json
import os.path as osp
import sys

import pytest
import torch.nn as nn

from mmdet_gghost.analysis import (arch_to_backbone_cfg,
                                   build_backbone_from_arch,
                                   build_model_from_config, complexity_notes,
                                   complexity_report, complexity_table,
                                   format_count, infer_stage_groups)

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))

class OneConv(nn.Module):
    """A 'backbone' with a single 3x3 conv stage (and optionally a BN)."""

    def __init__(self, cin=3, cout=8, bias=False, bn=False):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, 3, padding=1, bias=bias)
        self.bn = nn.BatchNorm2d(cout) if bn else nn.Identity()

    def forward(self, x):
        return self.bn(self.conv(x))


def test_single_conv_known_values():
    h, w, cin, cout = 12, 20, 3, 8
    model = OneConv(cin, cout)
    rep = complexity_report(model, (cin, h, w))
    assert rep['total']['macs'] == h * w * cin * cout * 9
    assert rep['total']['activations'] == h * w * cout
    assert rep['total']['params'] == cin * cout * 9
    assert rep['input_shape'] == [1, cin, h, w]
    # a bare backbone: the backbone row is the model itself
    assert rep['backbone']['name'] == ''
    assert rep['backbone']['macs'] == rep['total']['macs']
    assert rep['parts'] == []
    # (H, W) means 3 input channels; a batch of 2 doubles MACs/activations
    assert complexity_report(model, (h, w))['total'] == rep['total']
    rep2 = complexity_report(model, (2, cin, h, w))
    assert rep2['total']['macs'] == 2 * rep['total']['macs']
    assert rep2['total']['activations'] == 2 * rep['total']['activations']
    assert rep2['total']['params'] == rep['total']['params']


def test_bn_not_counted_unless_asked_and_fusing_reported():
    h, w, cin, cout = 8, 8, 4, 6
    model = OneConv(cin, cout, bn=True)
    conv_macs = h * w * cin * cout * 9
    rep = complexity_report(model, (cin, h, w))
    assert rep['total']['macs'] == conv_macs
    assert rep['bn_macs_counted'] is False
    assert rep['bn_fused'] is False and rep['bn_layers'] == 1
    # mmengine's estimate for an affine BN in eval mode: 2 ops per element
    rep_bn = complexity_report(model, (cin, h, w), count_bn=True)
    assert rep_bn['total']['macs'] == conv_macs + 2 * h * w * cout
    # params: conv weight + BN weight/bias (running stats are buffers)
    assert rep['total']['params'] == cin * cout * 9 + 2 * cout

    from mmcv.cnn import fuse_conv_bn
    fused = fuse_conv_bn(OneConv(cin, cout, bn=True)).eval()
    rep_f = complexity_report(fused, (cin, h, w), bn_fused=True)
    assert rep_f['bn_fused'] is True and rep_f['bn_layers'] == 0
    assert rep_f['total']['macs'] == conv_macs  # MACs unchanged by fusing
    assert rep_f['total']['params'] == cin * cout * 9 + cout  # + conv bias
    assert 'BN fused: yes' in complexity_notes(rep_f)
    assert 'BN fused: no (1 BN layers)' in complexity_notes(rep)
    # one row for the backbone, one per stage (its children: conv, bn)
    assert [s['name'] for s in rep['stages']] == ['conv', 'bn']
    assert complexity_table(rep).row_count == 3


def test_mode_restored_after_counting():
    model = OneConv(bn=True).train()
    complexity_report(model, (8, 8))
    assert model.training


def test_stage_groups():
    class WithNames(nn.Module):
        stage_names = ['b', 'a']

        def __init__(self):
            super().__init__()
            self.a = nn.Conv2d(3, 3, 1)
            self.b = nn.Conv2d(3, 3, 1)

    assert list(infer_stage_groups(WithNames())) == ['b', 'a']
    assert list(infer_stage_groups(WithNames(), ['a'])) == ['a']
    # an OpenMMLab ResNet: stem = the children that are not res layers
    resnet = build_backbone_from_arch('resnet18', base_channels=8)
    groups = infer_stage_groups(resnet)
    assert list(groups) == ['stem', 'layer1', 'layer2', 'layer3', 'layer4']
    assert groups['stem'] == ['conv1', 'bn1', 'relu', 'maxpool']


def test_resnet18_stages_sum_to_backbone_and_match_reference():
    model = build_backbone_from_arch('resnet18')
    rep = complexity_report(model, (224, 224))
    names = [s['name'] for s in rep['stages']]
    assert names == ['stem', 'layer1', 'layer2', 'layer3', 'layer4']
    for key in ('params', 'macs', 'activations'):
        assert sum(s[key] for s in rep['stages']) == rep['backbone'][key]
        assert rep['other'][key] == 0
    # torchvision's resnet18 without its fc layer: 11,689,512 - 513,000
    # params and 1,814,073,344 - 512,000 conv MACs (fvcore's counts)
    assert rep['total']['params'] == 11_176_512
    assert rep['total']['macs'] == 1_813_561_344
    assert rep['stages'][0]['macs'] == 112 * 112 * 3 * 64 * 49  # 7x7 stem


def test_detector_parts_and_backbone(tiny_det_config):
    model, cfg, scope = build_model_from_config(tiny_det_config)
    assert scope == 'mmdet'
    rep = complexity_report(model, (3, 64, 96))
    parts = {p['name']: p for p in rep['parts']}
    assert {'backbone', 'neck', 'bbox_head'} <= set(parts)
    for key in ('params', 'macs', 'activations'):
        assert sum(p[key] for p in rep['parts']) == rep['total'][key]
        assert sum(s[key] for s in rep['stages']) == rep['backbone'][key]
    assert rep['backbone']['name'] == 'backbone'
    assert parts['bbox_head']['macs'] > 0 and parts['neck']['macs'] > 0
    # tracing the detector in tensor mode counts the same backbone work
    # as tracing the backbone alone
    alone = complexity_report(model.backbone, (3, 64, 96))
    assert alone['total'] == {
        k: rep['backbone'][k]
        for k in ('params', 'macs', 'activations', 'ops')
    }
    assert sum(p['ops'] for p in rep['parts']) == rep['total']['ops']


def test_arch_names():
    assert arch_to_backbone_cfg('gghost_resnet34') == dict(
        type='GGhostResNet', depth=34)
    assert arch_to_backbone_cfg('resnet34') == dict(type='ResNet', depth=34)
    assert arch_to_backbone_cfg('gghost_regnetx_3.2gf') == dict(
        type='GGhostRegNet', arch='gghost_regnetx_3.2gf')
    assert arch_to_backbone_cfg('regnetx_3.2gf') == dict(
        type='RegNet', arch='regnetx_3.2gf')
    assert arch_to_backbone_cfg('cghostnet_1.0x') == dict(
        type='CGhostNet', widen_factor=1.0)
    with pytest.raises(ValueError, match='Unknown backbone arch'):
        arch_to_backbone_cfg('vgg16')


def test_format_count():
    assert format_count(21_284_672) == '21.3M'
    assert format_count(3_600_000_000) == '3.6G'
    assert format_count(512) == '512'
    assert format_count(None) == '-'


def _complexity_cli():
    sys.path.insert(0, osp.join(ROOT, 'tools', 'analysis'))
    try:
        import complexity
    finally:
        sys.path.pop(0)
    return complexity


def test_cli_arch_and_config(tiny_det_config, tmp_path, capsys):
    cli = _complexity_cli()
    out = tmp_path / 'r18.json'
    rep = cli.main(['resnet18', '--shape', '64', '64', '--json', str(out)])
    saved = json.loads(out.read_text())
    assert saved['target'] == 'resnet18'
    assert saved['total'] == rep['total']
    assert [s['name'] for s in saved['stages']][0] == 'stem'
    printed = capsys.readouterr().out
    assert 'layer4' in printed and 'BN fused: no' in printed

    # a detector config: the input is padded like its data preprocessor
    rep = cli.main([tiny_det_config, '--shape', '50', '70', '--fuse'])
    assert rep['input_shape'] == [1, 3, 64, 96]
    assert rep['bn_fused'] is True and rep['bn_layers'] == 0
    assert 'BN fused: yes' in capsys.readouterr().out


def test_cli_errors(tmp_path):
    cli = _complexity_cli()
    missing = str(tmp_path / 'nope.py')
    with pytest.raises(SystemExit, match='config file not found: .*nope.py'):
        cli.main([missing])
    with pytest.raises(SystemExit, match='Unknown backbone arch'):
        cli.main(['not_a_net'])


def test_gghost_backbones_are_registered_for_mmdet():
    """No skip when the G-Ghost backbones are missing: they are this
    package's own models, so a failing import or registration fails."""
    import mmdet_gghost.models as models
    from mmdet.registry import MODELS
    assert MODELS.get('GGhostResNet') is models.GGhostResNet


def test_gghost_resnet34_cheaper_than_resnet34():
    reps = {
        a: complexity_report(build_backbone_from_arch(a), (64, 64))
        for a in ('resnet34', 'gghost_resnet34')
    }
    g, r = reps['gghost_resnet34'], reps['resnet34']
    assert [s['name'] for s in g['stages']] == list(
        build_backbone_from_arch('gghost_resnet34').stage_names)
    for key in ('params', 'macs', 'activations'):
        assert g['total'][key] < r['total'][key]
        assert sum(s[key] for s in g['stages']) + g['other'][key] == \
            g['backbone'][key]
    # the G-Ghost stages hold all of the backbone's convolutions
    assert g['other']['macs'] == 0
