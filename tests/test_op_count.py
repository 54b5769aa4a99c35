"""Ops per forward (mmdet_gghost.analysis.count_ops) and the op-lean deploy
form: exact counts derived from the architectures, not snapshots."""
import pytest
import torch
import torch.nn as nn

import mmdet_gghost  # noqa: F401  (registers the models)
from mmdet_gghost.analysis import (build_backbone_from_arch,
                                   complexity_report, count_ops)
from mmdet_gghost.models import (INFERENCE_FORMS, GGhostResNet, deploy_model,
                                 inference_form)

class ViewsAndAllocs(nn.Module):
    """conv, in-place ReLU, mean, an add into a slice of an empty buffer:
    4 launching ops; the slice, view and empty launch nothing."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 1)

    def forward(self, x):
        y = torch.relu_(self.conv(x[:, :3]))
        buf = torch.empty(1, 8, *y.shape[2:])
        torch.add(y, y, out=buf[:, :4])
        return buf.view(-1).mean()


def test_count_ops_excludes_views_and_allocations():
    by_module, by_op = count_ops(ViewsAndAllocs(), (torch.randn(1, 5, 4, 4),),
                                 ['conv'])
    assert by_module == {'': 4, 'conv': 1}
    assert by_op == {'convolution': 1, 'relu_': 1, 'add': 1, 'mean': 1}


def _resnet_arch(depth):
    kind, blocks = GGhostResNet.arch_settings[depth]
    assert kind == 'basic'
    # a projection shortcut in the first block of stages 2-4
    return [(n, int(i > 0)) for i, n in enumerate(blocks)]


def _deploy_counts(arch, shape=(1, 3, 64, 64)):
    model = deploy_model(build_backbone_from_arch(arch))
    rep = complexity_report(model, shape)
    return rep, {s['name']: s['ops'] for s in rep['stages']}


def _stage_ops(arch, batch, layout, **overrides):
    """Ops per stage of the deploy form of ``arch`` (config ``overrides``)
    on a (batch, 3, 64, 64) input in ``layout`` (``'nchw'`` or
    ``'channels_last'``)."""
    model = deploy_model(build_backbone_from_arch(arch, **overrides))
    x = torch.randn(batch, 3, 64, 64)
    if layout == 'channels_last':
        model = model.to(memory_format=torch.channels_last)
        x = x.contiguous(memory_format=torch.channels_last)
    names = [n for n, _ in model.named_children() if n.startswith('layer')]
    ops = count_ops(model, (x, ), ['stem', *names])[0]
    return {n: ops[n] for n in ['stem', *names]}


@pytest.mark.parametrize('depth', [18, 34])
def test_deploy_op_counts_follow_the_architecture(depth):
    """Fused ResNet (mmcv fuse_conv_bn): stem conv, ReLU, max-pool; each
    basic block conv, ReLU, conv, add, ReLU (+ projection conv). The
    G-Ghost deploy form runs the same blocks plus, per stage: at batch 1 in
    NCHW 6 ops (one mean over the stage buffer, mix conv, ReLU, mix conv,
    cheap conv with the mix as bias, ReLU into the output); in
    channels-last at batch 1 7 (two means: the dense blocks, and the last
    complex output inside the dense stage output); at batch 2 in either
    layout 8 (the mix added to the cheap conv's output) -- whatever the
    number of blocks n."""
    arch = _resnet_arch(depth)
    rep_r, r = _deploy_counts(f'resnet{depth}')
    rep_g, g = _deploy_counts(f'gghost_resnet{depth}')
    counts = {(batch, layout): _stage_ops(f'gghost_resnet{depth}', batch,
                                          layout)
              for batch in (1, 2) for layout in ('nchw', 'channels_last')}
    extra = {(1, 'nchw'): 6, (1, 'channels_last'): 7,
             (2, 'nchw'): 8, (2, 'channels_last'): 8}
    assert r['stem'] == g['stem'] == 3
    for i, (n, proj) in enumerate(arch):
        name = f'layer{i + 1}'
        assert r[name] == 5 * n + proj
        assert g[name] == 5 * n + proj + 6
        for key, ops in counts.items():
            assert ops[name] == 5 * n + proj + extra[key], (key, name)
    assert rep_r['total']['ops'] == 3 + sum(5 * n + p for n, p in arch)
    assert rep_g['total']['ops'] == rep_r['total']['ops'] + 6 * len(arch)
    assert rep_g['other']['ops'] == rep_r['other']['ops'] == 0


@pytest.mark.parametrize('layout', ['nchw', 'channels_last'])
@pytest.mark.parametrize('batch', [1, 2])
def test_deploy_form_without_mix_adds_cheap_conv_and_relu(batch, layout):
    """Without mix a stage adds only the cheap conv and its ReLU (into the
    output), in every layout and batch size."""
    arch = _resnet_arch(34)
    ops = _stage_ops('gghost_resnet34', batch, layout, mix=False)
    for i, (n, proj) in enumerate(arch):
        assert ops[f'layer{i + 1}'] == 5 * n + proj + 2


@pytest.mark.parametrize('layout', ['nchw', 'channels_last'])
@pytest.mark.parametrize('batch', [1, 2])
@pytest.mark.parametrize('mix', [True, False])
def test_deploy_form_convs_read_dense_tensors(mix, batch, layout):
    """No conv of a G-Ghost deploy stage copies its input first: each reads
    a tensor dense in the model's layout (a channel slice is not, in
    channels-last or at batch > 1, and the conv would copy it)."""
    fmt = (torch.channels_last if layout == 'channels_last' else
           torch.contiguous_format)
    model = deploy_model(build_backbone_from_arch(
        'gghost_resnet34', mix=mix)).to(memory_format=fmt)
    read = []

    def check(conv, args):
        read.append(args[0].is_contiguous(memory_format=fmt))

    for name, stage in model.named_children():
        for m in stage.modules() if name.startswith('layer') else ():
            if isinstance(m, nn.Conv2d):
                m.register_forward_pre_hook(check)
    with torch.no_grad():
        model(torch.randn(batch, 3, 64, 64).contiguous(memory_format=fmt))
    assert read and all(read), read


def test_eval_form_op_counts_follow_the_architecture():
    """Unfused: every conv is followed by a BN op; a G-Ghost stage adds one
    mean per pooled feature (n), their concat, the mix (conv, BN, ReLU,
    conv, BN), the cheap conv + BN, the add, the ReLU and the output
    concat: n + 11."""
    rep = complexity_report(build_backbone_from_arch('gghost_resnet34'),
                            (1, 3, 64, 64))
    ops = {s['name']: s['ops'] for s in rep['stages']}
    assert ops['stem'] == 4
    for i, (n, proj) in enumerate(_resnet_arch(34)):
        blocks = 7 * n + 2 * proj
        assert ops[f'layer{i + 1}'] == blocks + n + 11


def test_regnet_deploy_op_counts_follow_the_architecture():
    """RegNetX block: 1x1, ReLU, 3x3 group, ReLU, 1x1, add, ReLU (+ the
    projection of a stage's first block); stem conv + ReLU; a G-Ghost stage
    (first + complex + end block) adds the 6 ops of its cheap path/mix."""
    model = build_backbone_from_arch('gghost_regnetx_200mf')
    depths = model.arch['depths']
    _, ops = _deploy_counts('gghost_regnetx_200mf')
    assert ops['stem'] == 2
    for i, n in enumerate(depths):
        extra = 6 if i in model.gghost_stages else 0
        assert ops[f'layer{i + 1}'] == 8 + 7 * (n - 1) + extra


def test_cghostnet_deploy_form_drops_one_concat_per_relu_ghost_module():
    """The first Ghost module of each of the 16 bottlenecks has ReLU: its
    ReLUs write into the output buffer, no concat (one op less); the
    second one (no ReLU) keeps its concat."""
    from mmdet_gghost.models import fuse_model
    x = (torch.randn(1, 3, 64, 64), )
    fused = fuse_model(build_backbone_from_arch('cghostnet_0.5x'))
    deployed = deploy_model(build_backbone_from_arch('cghostnet_0.5x'))
    assert count_ops(fused, x)[0][''] - count_ops(deployed, x)[0][''] == 16


def test_complexity_cli_deploy_reports_ops(capsys):
    import os.path as osp
    import sys
    sys.path.insert(0, osp.join(osp.dirname(osp.dirname(
        osp.abspath(__file__))), 'tools', 'analysis'))
    try:
        import complexity
    finally:
        sys.path.pop(0)
    rep = complexity.main(['gghost_resnet18', '--shape', '64', '64',
                           '--deploy'])
    arch = [(2, 0), (2, 1), (2, 1), (2, 1)]
    assert rep['total']['ops'] == 3 + sum(5 * n + p + 6 for n, p in arch)
    assert rep['bn_fused'] is True
    out = capsys.readouterr().out
    assert 'ops' in out and 'device-launching aten ops' in out
    # --fuse-conv-bn (alias --fuse) counts the fused form: BN folded, the
    # same modules, so more ops than the op-lean deploy form
    for flag in ('--fuse-conv-bn', '--fuse'):
        fused = complexity.main(['gghost_resnet18', '--shape', '64', '64',
                                 flag])
        assert fused['bn_fused'] is True and fused['bn_layers'] == 0
        assert fused['total']['ops'] > rep['total']['ops']


def test_inference_form_is_one_word_per_form():
    """'eval' as built, 'fused' BN folded (fewer ops), 'deploy' fused and
    op-lean (fewer still); the same values; unknown names are refused."""
    x = torch.randn(1, 3, 64, 64)
    ops, outs = {}, {}
    for form in INFERENCE_FORMS:
        torch.manual_seed(0)
        model = inference_form(build_backbone_from_arch('gghost_resnet18'),
                               form)
        assert not model.training
        ops[form] = count_ops(model, (x, ))[0]['']
        with torch.no_grad():
            outs[form] = model(x)
    assert ops['deploy'] < ops['fused'] < ops['eval']
    for form in ('fused', 'deploy'):
        for a, b in zip(outs['eval'], outs[form]):
            torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-4)
    with pytest.raises(ValueError, match=r"unknown inference form 'fuse'; "
                       r'choose one of eval, fused, deploy'):
        inference_form(nn.Conv2d(1, 1, 1), 'fuse')


def test_benchmark_forms_compose_inference_form_and_layout():
    from mmdet_gghost.benchmark import inference_forms
    torch.manual_seed(0)
    stage = build_backbone_from_arch('gghost_resnet18').train()
    forms = inference_forms(stage, ['deploy', 'deploy_channels_last',
                                    'channels_last'])
    assert stage.training  # copies: the model itself is untouched
    x = torch.randn(1, 3, 64, 64)
    assert count_ops(forms['deploy'], (x, ))[0][''] < count_ops(
        forms['channels_last'], (x, ))[0]['']
    weights = [p for p in forms['deploy_channels_last'].parameters()
               if p.dim() == 4]
    assert weights and all(w.is_contiguous(memory_format=torch.channels_last)
                           for w in weights)
    with pytest.raises(ValueError, match=r"unknown form 'fused_nhwc': "
                       r'expected \[compiled_\]FORM\[_channels_last\]'):
        inference_forms(stage, ['fused_nhwc'])
