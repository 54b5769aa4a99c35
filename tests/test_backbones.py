"""Backbones: shapes, official parity, the backbone contract, deploy form."""
import copy
import warnings

import pytest
import torch
from mmengine.analysis import get_model_complexity_info
from torch.nn.modules.batchnorm import _BatchNorm

import mmdet_gghost  # noqa: F401  (registers the models)
from mmdet_gghost.checkpoint import CheckpointMismatchError
from mmdet_gghost.models import (CGhostNet, GGhostRegNet, GGhostResNet,
                                 GGhostStage, ResidualBlock,
                                 convert_official_gghost_regnet,
                                 split_channels)

from official_reference import RefGGhostRegNet, randomize_norms

BACKBONES = [
    (GGhostResNet, dict(depth=18)),
    (GGhostResNet, dict(depth=34)),
    (GGhostResNet, dict(depth=50)),
    (GGhostResNet, dict(depth=34, gghost_stages=(), widen_factor=0.8)),
    (GGhostResNet, dict(depth=34, cheap_op='dwconv3x3', mix=False)),
    (GGhostRegNet, dict(arch='gghost_regnetx_200mf')),
    (GGhostRegNet, dict(arch='gghost_regnetx_3.2gf')),
    (CGhostNet, dict(widen_factor=0.5)),
    (CGhostNet, dict(widen_factor=1.0)),
]


def _ids(params):
    cls, kwargs = params
    return cls.__name__ + '-' + '-'.join(f'{k}={v}' for k, v in kwargs.items())


@pytest.mark.parametrize('spec', BACKBONES, ids=[_ids(b) for b in BACKBONES])
def test_output_shapes_and_strides(spec):
    cls, kwargs = spec
    model = cls(**kwargs).eval()
    with torch.no_grad():
        outs = model(torch.randn(2, 3, 64, 96))
    assert len(outs) == 4
    for i, out in enumerate(outs):
        stride = 2**(i + 2)
        assert out.shape == (2, model.out_channels[i], 64 // stride,
                             96 // stride)


def test_known_widths():
    assert GGhostResNet(depth=50).out_channels == [256, 512, 1024, 2048]
    assert GGhostRegNet(arch='gghost_regnetx_3.2gf').out_channels == [
        96, 192, 432, 1008]
    assert CGhostNet().out_channels == [24, 40, 112, 960]
    # 0.8x widths rounded to multiples of 8
    assert GGhostResNet(depth=34, gghost_stages=(),
                        widen_factor=0.8).out_channels == [48, 104, 208, 408]


@pytest.mark.parametrize('out_indices', [(0, ), (1, 3), (3, ), (0, 1, 2, 3)])
def test_out_indices(out_indices):
    model = GGhostResNet(depth=18, out_indices=out_indices).eval()
    outs = model(torch.randn(1, 3, 64, 64))
    assert [o.shape[1] for o in outs] == [model.out_channels[i]
                                          for i in out_indices]


# Official counts (mmengine get_model_complexity_info, 224x224, BN not
# counted): classifier params, backbone params, MACs of the classifier.
OFFICIAL = {
    'gghost_regnetx_3.2gf': (10.511e6, 9.502e6, 1.820e9),
    'gghost_regnetx_4.0gf': (15.726e6, 14.365e6, 2.249e9),
    'gghost_regnetx_8.0gf': (24.587e6, 22.666e6, 4.172e9),
    'gghost_regnetx_16gf': (32.382e6, 30.333e6, 9.039e9),
}


@pytest.mark.parametrize('arch', sorted(OFFICIAL))
def test_regnet_matches_official_counts(arch):
    cls_params, backbone_params, macs = OFFICIAL[arch]
    model = GGhostRegNet(arch=arch).eval()
    ours = sum(p.numel() for p in model.parameters())
    fc = model.out_channels[-1] * 1000 + 1000
    assert ours == pytest.approx(backbone_params, rel=5e-3)
    assert ours + fc == pytest.approx(cls_params, rel=5e-3)
    info = get_model_complexity_info(model, input_shape=(3, 224, 224),
                                     show_table=False, show_arch=False)
    fc_macs = model.out_channels[-1] * 1000
    assert info['flops'] + fc_macs == pytest.approx(macs, rel=5e-3)


def test_plain_resnet34_matches_mmdet_resnet34():
    from mmdet.models.backbones import ResNet
    ours = GGhostResNet(depth=34, gghost_stages=())
    theirs = ResNet(depth=34)
    count = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731
    assert count(ours) == count(theirs)


def test_gghost_resnet34_is_cheaper_than_resnet34():
    shape = (3, 224, 224)
    infos = [get_model_complexity_info(m.eval(), input_shape=shape,
                                       show_table=False, show_arch=False)
             for m in (GGhostResNet(depth=34),
                       GGhostResNet(depth=34, gghost_stages=()))]
    ratio = infos[0]['flops'] / infos[1]['flops']
    assert 0.35 < ratio < 0.55  # multiply-adds of blocks 2..n shrink ~4x
    assert infos[0]['activations'] < infos[1]['activations']


def _official_and_ours(arch='gghost_regnetx_200mf'):
    settings = GGhostRegNet.arch_settings[arch]
    ref = RefGGhostRegNet(settings['depths'], settings['widths'],
                          settings['group_width'])
    randomize_norms(ref).eval()
    converted, unmapped = convert_official_gghost_regnet(ref.state_dict())
    return ref, converted, unmapped


def test_official_checkpoint_converts_and_reproduces_outputs():
    ref, converted, unmapped = _official_and_ours()
    assert unmapped == []
    ours = GGhostRegNet(arch='gghost_regnetx_200mf').eval()
    backbone_state = {k[len('backbone.'):]: v for k, v in converted.items()
                      if k.startswith('backbone.')}
    ours.load_state_dict(backbone_state, strict=True)
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        for a, b in zip(ref.features(x), ours(x)):
            torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)
    assert set(converted) - {'backbone.' + k for k in backbone_state} == {
        'head.fc.weight', 'head.fc.bias'}


def test_converter_reports_unknown_keys():
    _, _, unmapped = _official_and_ours()
    state = {'layer3.mystery.weight': torch.zeros(1), 'fc.weight':
             torch.zeros(1)}
    converted, unmapped = convert_official_gghost_regnet(state)
    assert unmapped == ['layer3.mystery.weight']
    assert list(converted) == ['head.fc.weight']


def test_pretrained_official_file_loads_through_init_cfg(tmp_path):
    ref, _, _ = _official_and_ours()
    path = tmp_path / 'official.pth'
    torch.save(ref.state_dict(), path)
    ours = GGhostRegNet(arch='gghost_regnetx_200mf',
                        init_cfg=dict(type='Pretrained',
                                      checkpoint=str(path)))
    ours.init_weights()
    ours.eval()
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(ours(x)[-1], ref.features(x)[-1],
                                   rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize('depth', [18, 34])
def test_torchvision_resnet_weights_load_into_the_plain_resnet(depth,
                                                               tmp_path):
    """``GGhostResNet(gghost_stages=())`` takes a torchvision ResNet
    checkpoint (``torchvision://resnet34`` in the deploy-baseline config)
    and computes what torchvision's network computes, stage for stage."""
    import torchvision
    tv = randomize_norms(getattr(torchvision.models, f'resnet{depth}')())
    path = tmp_path / 'tv.pth'
    torch.save(tv.state_dict(), path)
    ours = GGhostResNet(depth=depth, gghost_stages=(), init_cfg=dict(
        type='Pretrained', checkpoint=str(path)))
    ours.init_weights()
    tv.eval(), ours.eval()
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        y = tv.maxpool(tv.relu(tv.bn1(tv.conv1(x))))
        expected = []
        for layer in (tv.layer1, tv.layer2, tv.layer3, tv.layer4):
            y = layer(y)
            expected.append(y)
        for a, b in zip(expected, ours(x)):
            torch.testing.assert_close(b, a, rtol=1e-4, atol=1e-5)
    # a G-Ghost ResNet cannot take it: one error naming what is missing
    gghost = GGhostResNet(depth=depth, init_cfg=dict(type='Pretrained',
                                                     checkpoint=str(path)))
    with pytest.raises(CheckpointMismatchError, match='missing keys'):
        gghost.init_weights()


def test_pretrained_prefix_and_mismatch_errors(tmp_path):
    src = GGhostResNet(depth=18)
    path = tmp_path / 'cls.pth'
    torch.save({'state_dict': {'backbone.' + k: v
                               for k, v in src.state_dict().items()}}, path)
    dst = GGhostResNet(depth=18, init_cfg=dict(
        type='Pretrained', checkpoint=str(path), prefix='backbone.'))
    dst.init_weights()
    for (k, a), b in zip(src.state_dict().items(), dst.state_dict().values()):
        assert torch.equal(a, b), k
    # the one checkpoint rule (apis/weights.py): a checkpoint without BN
    # num_batches_tracked counters (older torch, other toolboxes) loads, as
    # it does through build_model / tools/test.py
    no_counters = tmp_path / 'no_counters.pth'
    torch.save({'state_dict': {'backbone.' + k: v
                               for k, v in src.state_dict().items()
                               if not k.endswith('num_batches_tracked')}},
               no_counters)
    dst = GGhostResNet(depth=18, init_cfg=dict(
        type='Pretrained', checkpoint=str(no_counters), prefix='backbone.'))
    dst.init_weights()
    for (k, a), b in zip(src.state_dict().items(), dst.state_dict().values()):
        assert torch.equal(a, b) or k.endswith('num_batches_tracked'), k
    wrong = GGhostResNet(depth=34, init_cfg=dict(
        type='Pretrained', checkpoint=str(path), prefix='backbone.'))
    with pytest.raises(ValueError, match='missing keys'):
        wrong.init_weights()
    missing = GGhostResNet(depth=18, init_cfg=dict(
        type='Pretrained', checkpoint=str(tmp_path / 'nope.pth')))
    with pytest.raises(FileNotFoundError, match='init_cfg=None'):
        missing.init_weights()
    # the demo detector's missing pre-training names the command making it
    with pytest.raises(FileNotFoundError,
                       match='nope.pth.*configs/demo/gghost_r34_cls_pretrain'):
        missing.init_weights()


def test_zero_init_residual():
    model = GGhostResNet(depth=18)
    model.init_weights()
    blocks = [m for m in model.modules() if isinstance(m, ResidualBlock)]
    assert blocks and all(b.last_norm.weight.abs().sum() == 0 for b in blocks)
    model = GGhostResNet(depth=18, zero_init_residual=False)
    model.init_weights()
    assert all(b.last_norm.weight.abs().sum() > 0 for b in model.modules()
               if isinstance(b, ResidualBlock))


@pytest.mark.parametrize('frozen_stages', [0, 1, 3])
def test_frozen_stages(frozen_stages):
    model = GGhostResNet(depth=18, frozen_stages=frozen_stages)
    model.train()
    for i, name in enumerate(model.stage_names):
        module = getattr(model, name)
        frozen = i <= frozen_stages
        assert all(p.requires_grad != frozen for p in module.parameters())
        for m in module.modules():
            if isinstance(m, _BatchNorm):
                assert m.training != frozen


def test_norm_eval_and_gradients_reach_every_trainable_param():
    model = GGhostRegNet(arch='gghost_regnetx_200mf', norm_eval=True,
                         frozen_stages=1)
    model.train()
    assert all(not m.training for m in model.modules()
               if isinstance(m, _BatchNorm))
    sum(o.mean() for o in model(torch.randn(2, 3, 64, 64))).backward()
    for name, p in model.named_parameters():
        if p.requires_grad:
            assert p.grad is not None and p.grad.abs().sum() > 0, name
        else:
            assert p.grad is None, name


def test_with_cp_checkpoints_every_block_and_gives_same_gradients(
        monkeypatch):
    torch.manual_seed(0)
    a = GGhostResNet(depth=18, zero_init_residual=False)
    a.init_weights()
    b = copy.deepcopy(a)
    for blk in b.modules():
        if isinstance(blk, ResidualBlock):
            blk.with_cp = True
    x = torch.randn(2, 3, 64, 64, requires_grad=True)
    calls = _count_checkpoint_calls(monkeypatch)
    sum(o.sum() for o in a(x)).backward()
    assert calls == []  # with_cp=False: no checkpointing
    sum(o.sum() for o in b(x)).backward()
    # every residual block of b ran under torch.utils.checkpoint, once each
    cp_blocks = [blk for blk in b.modules()
                 if isinstance(blk, ResidualBlock)]
    assert len(cp_blocks) > 0
    assert sorted(map(id, calls)) == sorted(id(blk) for blk in cp_blocks)
    for (n, pa), pb in zip(a.named_parameters(), b.parameters()):
        torch.testing.assert_close(pa.grad, pb.grad, msg=n)


def _count_checkpoint_calls(monkeypatch):
    """Record the block (``self`` of the checkpointed bound method) of
    every torch.utils.checkpoint call made by mmdet_gghost's blocks."""
    from mmdet_gghost.models import blocks
    calls, real = [], blocks.cp.checkpoint

    def counting(function, *args, **kwargs):
        calls.append(getattr(function, '__self__', function))
        return real(function, *args, **kwargs)

    monkeypatch.setattr(blocks.cp, 'checkpoint', counting)
    return calls


def _stage(mix=True, end_block=False, cheap_op='conv1x1'):
    def make_block(i, o, s, role):
        return ResidualBlock(i, o, s, kind='basic')
    return GGhostStage(make_block, 16, 32, 4, stride=2, cheap_ratio=0.5,
                       mix=mix, end_block=end_block, cheap_op=cheap_op)


def test_mix_changes_output_and_pooling_per_feature_equals_pooled_concat():
    torch.manual_seed(0)
    stage = _stage(mix=True)
    randomize_norms(stage).eval()
    no_mix = _stage(mix=False)
    no_mix.load_state_dict({k: v for k, v in stage.state_dict().items()
                            if not k.startswith('mix.')})
    no_mix.eval()
    x = torch.randn(2, 16, 32, 32)
    with torch.no_grad():
        out = stage(x)
        assert out.shape == (2, 32, 16, 16)
        assert not torch.allclose(out, no_mix(x))
        # The stage pools every feature separately; pooling the
        # concatenation (what the official code does) must give the same.
        x0 = stage.first(x)
        feats, e = [x0], x0[:, :stage.complex_channels]
        for blk in stage.complex_blocks:
            e = blk(e)
            feats.append(e)
        pooled_concat = torch.cat(feats, 1).mean((2, 3), keepdim=True)
        ghost = stage.cheap(x0[:, stage.complex_channels:]) + stage.mix(
            pooled_concat)
        expected = torch.cat([e, torch.relu(ghost)], 1)
    torch.testing.assert_close(out, expected)
    # both mix paths are identical in the complex half
    torch.testing.assert_close(out[:, :16], no_mix(x)[:, :16])


@pytest.mark.parametrize('spec', BACKBONES, ids=[_ids(b) for b in BACKBONES])
def test_deploy_form_equals_eval_form(spec):
    cls, kwargs = spec
    torch.manual_seed(0)
    model = cls(**kwargs, zero_init_residual=False) if cls is not CGhostNet \
        else cls(**kwargs)
    model.init_weights()
    randomize_norms(model).eval()
    # batch 1: the mix vector is the cheap conv's bias; batch 2: it is added
    xs = [torch.randn(2, 3, 64, 64), torch.randn(1, 3, 64, 64)]
    with torch.no_grad():
        expected = [model(x) for x in xs]
        model.switch_to_deploy()
        assert_op_lean(model)
        got = [model(x) for x in xs]
        # the CPU speed numbers use the deploy form in channels-last (NHWC):
        # channel slices and concats must give the same maps there too
        model.to(memory_format=torch.channels_last)
        got_nhwc = [model(x.contiguous(memory_format=torch.channels_last))
                    for x in xs]
    for outs in (got, got_nhwc):
        for exp, out in zip(expected, outs):
            for a, b in zip(exp, out):
                torch.testing.assert_close(b, a, rtol=1e-4,
                                           atol=1e-4 * a.abs().max())


def assert_op_lean(model):
    """The deploy form: no BN, no ConvModule (hence no Identity in its
    place), every block/stage/Ghost module in its deploy class."""
    from mmcv.cnn import ConvModule
    from torch import nn

    from mmdet_gghost.models.blocks import DeployResidualBlock
    from mmdet_gghost.models.cghostnet import (DeployGhostBottleneck,
                                               DeployGhostModule)
    from mmdet_gghost.models.gghost_stage import DeployGGhostStage
    kinds = {}
    for name, m in model.named_modules():
        assert not isinstance(m, (_BatchNorm, ConvModule, nn.Identity,
                                  ResidualBlock, GGhostStage)), name
        kinds[type(m)] = kinds.get(type(m), 0) + 1
    if isinstance(model, CGhostNet):
        assert kinds.get(DeployGhostBottleneck) == 16
        assert kinds.get(DeployGhostModule) == 32
    else:
        assert kinds.get(DeployResidualBlock, 0) > 0
        assert kinds.get(DeployGGhostStage, 0) == len(model.gghost_stages)


def test_deploy_form_of_official_checkpoint_reproduces_official_outputs():
    """Official weights load into the eval form; its deploy form keeps the
    official outputs."""
    ref, converted, _ = _official_and_ours()
    ours = GGhostRegNet(arch='gghost_regnetx_200mf').eval()
    ours.load_state_dict({k[len('backbone.'):]: v
                          for k, v in converted.items()
                          if k.startswith('backbone.')}, strict=True)
    ours.switch_to_deploy()
    assert_op_lean(ours)
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        for a, b in zip(ref.features(x), ours(x)):
            torch.testing.assert_close(b, a, rtol=1e-4, atol=1e-4)


def test_custom_block_keeps_its_stage_and_still_deploys():
    """A stage whose blocks have no deploy form is kept (BN fused) and its
    convs still become plain convs; the output is unchanged."""
    from torch import nn

    class Custom(nn.Module):
        def __init__(self, cin, cout, stride, role):
            super().__init__()
            self.conv = nn.Conv2d(cin, cout, 3, stride, 1)

        def forward(self, x):
            return torch.relu(self.conv(x))

    stage = GGhostStage(Custom, 8, 16, 3, stride=2)
    randomize_norms(stage).eval()
    x = torch.randn(1, 8, 16, 16)
    with torch.no_grad():
        expected = stage(x)
        from mmdet_gghost.models import fuse_model, to_deploy_form
        holder = nn.Sequential(stage)
        fuse_model(holder)
        assert stage.deploy_form() is None
        to_deploy_form(holder)
        assert type(holder[0]) is GGhostStage
        assert type(holder[0].cheap) is nn.Conv2d
        torch.testing.assert_close(holder(x), expected, rtol=1e-4,
                                   atol=1e-5)


@pytest.mark.parametrize('kwargs,match', [
    (dict(cheap_ratio=0.0), 'cheap_ratio must be in'),
    (dict(cheap_ratio=1.0), 'cheap_ratio must be in'),
    (dict(out_indices=(4, )), 'out_indices'),
    (dict(frozen_stages=5), 'frozen_stages'),
    (dict(depth=42), 'unknown depth'),
    (dict(cheap_op='maxpool'), 'unknown cheap_op'),
    (dict(gghost_stages=(7, )), 'gghost_stages'),
    (dict(cheap_ratio=0.99), 'both must be > 0'),
    (dict(cheap_ratio='0.5'), r"cheap_ratio must be a number in \(0, 1\), "
     "got '0.5'"),
    (dict(channel_divisor=0), 'channel_divisor must be an integer >= 1, '
     'got 0'),
    (dict(channel_divisor=2.5), 'channel_divisor must be an integer'),
])
def test_bad_resnet_arguments(kwargs, match):
    kwargs = dict(dict(depth=18), **kwargs)
    with pytest.raises(ValueError, match=match):
        GGhostResNet(**kwargs)


def test_bad_regnet_and_ghostnet_arguments():
    with pytest.raises(ValueError, match='unknown arch'):
        GGhostRegNet(arch='gghost_regnetx_7gf')
    with pytest.raises(ValueError, match='>= 3 blocks'):
        GGhostRegNet(arch='gghost_regnetx_3.2gf', gghost_stages=(0, ))
    with pytest.raises(ValueError, match='widen_factor'):
        CGhostNet(widen_factor=0)
    with pytest.raises(ValueError, match='both must be > 0'):
        split_channels(8, 0.5, divisor=16)


def _mix_bns(model):
    return [m for name, m in model.named_modules()
            if '.mix.' in name and isinstance(m, _BatchNorm)]


@pytest.mark.parametrize('spec', [
    (GGhostResNet, dict(depth=18)),
    (GGhostRegNet, dict(arch='gghost_regnetx_200mf')),
], ids=['resnet18', 'regnetx_200mf'])
def test_mix_trains_at_batch_1(spec):
    """Batch 1, train mode, trainable BN: the mix's BNs (input (1, C, 1, 1))
    use their running statistics for that batch; everything still trains,
    batch >= 2 and eval mode are unchanged."""
    cls, kwargs = spec
    torch.manual_seed(0)
    model = cls(**kwargs)
    randomize_norms(model)
    model.train()
    x = torch.randn(1, 3, 64, 64)
    mix_stats = [bn.running_mean.clone() for bn in _mix_bns(model)]
    other = [m for m in model.modules()
             if isinstance(m, _BatchNorm) and m not in _mix_bns(model)]
    other_stats = [bn.running_mean.clone() for bn in other]
    # reference: the mix's BNs in eval mode by hand, the rest training
    reference = copy.deepcopy(model)
    for bn in _mix_bns(reference):
        bn.eval()
    expected = reference(x)

    outs = model(x)  # raised "Expected more than 1 value per channel"
    for out, exp in zip(outs, expected):
        torch.testing.assert_close(out, exp)
    assert all(bn.training for bn in _mix_bns(model))  # restored
    assert all(torch.equal(bn.running_mean, s)
               for bn, s in zip(_mix_bns(model), mix_stats))
    assert not any(torch.equal(bn.running_mean, s)
                   for bn, s in zip(other, other_stats))
    sum(o.sum() for o in outs).backward()
    assert all(bn.weight.grad is not None and bn.weight.grad.abs().sum() > 0
               for bn in _mix_bns(model))

    # batch 2: batch statistics as before (running stats move)
    model(torch.randn(2, 3, 64, 64))
    assert not any(torch.equal(bn.running_mean, s)
                   for bn, s in zip(_mix_bns(model), mix_stats))


MIX_SPECS = [(GGhostResNet, dict(depth=18)),
             (GGhostRegNet, dict(arch='gghost_regnetx_200mf'))]


@pytest.mark.parametrize('spec', MIX_SPECS, ids=['resnet18', 'regnetx_200mf'])
def test_zero_init_mix_starts_the_mix_as_a_no_op(spec, tmp_path):
    """Default from scratch: the mix's last BN weight is 0, so the backbone
    computes what it would without the mix (train and eval mode); the rest
    of the mix and the blocks are initialised as before."""
    cls, kwargs = spec
    torch.manual_seed(0)
    model = cls(**kwargs)
    model.init_weights()
    stages = [m for m in model.modules() if isinstance(m, GGhostStage)]
    assert stages and all(s.mix_last_norm.weight.abs().sum() == 0
                          for s in stages)
    assert all(s.mix[0].norm.weight.eq(1).all() for s in stages)
    no_mix = cls(**kwargs, mix=False)
    no_mix.load_state_dict({k: v for k, v in model.state_dict().items()
                            if '.mix.' not in k})
    x = torch.randn(8, 3, 64, 64)
    for mode in (True, False):
        model.train(mode), no_mix.train(mode)
        with torch.no_grad():
            for a, b in zip(model(x), no_mix(x)):
                torch.testing.assert_close(a, b)
    # ... and still learns: its last BN weight gets a gradient
    model.train()
    sum(o.sum() for o in model(x)).backward()
    assert all(s.mix_last_norm.weight.grad.abs().sum() > 0 for s in stages)

    off = cls(**kwargs, zero_init_mix=False)
    off.init_weights()
    assert all(s.mix_last_norm.weight.eq(1).all() for s in off.modules()
               if isinstance(s, GGhostStage))
    # a checkpoint's mix weights load as they are
    path = tmp_path / 'ckpt.pth'
    torch.save({'state_dict': randomize_norms(off).state_dict()}, path)
    loaded = cls(**kwargs, init_cfg=dict(type='Pretrained',
                                         checkpoint=str(path)))
    loaded.init_weights()
    for k, v in off.state_dict().items():
        assert torch.equal(loaded.state_dict()[k], v), k


def test_mix_norm_cfg_changes_the_mix_norms_only():
    torch.manual_seed(0)
    ref = randomize_norms(GGhostResNet(depth=18)).eval()
    synced = GGhostResNet(depth=18, mix_norm_cfg=dict(type='SyncBN'))
    kinds = {name: type(m) for name, m in synced.named_modules()
             if isinstance(m, _BatchNorm)}
    # mmcv's 'SyncBN' (a subclass of torch's SyncBatchNorm)
    assert all(issubclass(t, torch.nn.SyncBatchNorm)
               for n, t in kinds.items() if '.mix.' in n)
    assert {t for n, t in kinds.items() if '.mix.' not in n} == \
        {torch.nn.BatchNorm2d}
    assert list(synced.state_dict()) == list(ref.state_dict())
    synced.load_state_dict(ref.state_dict())
    synced.eval()
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        for a, b in zip(synced(x), ref(x)):
            torch.testing.assert_close(a, b)


@pytest.mark.parametrize('spec', MIX_SPECS, ids=['resnet18', 'regnetx_200mf'])
def test_small_batch_mix_bn_warning(spec):
    from mmdet_gghost.models.gghost_stage import (MIX_MIN_BATCH,
                                                  SmallBatchMixNormWarning)
    cls, kwargs = spec

    def warnings_at(batch, model=None, **extra):
        model = model or cls(**kwargs, **extra).train()
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter('always')
            model(torch.randn(batch, 3, 64, 64))
        return [w for w in caught
                if issubclass(w.category, SmallBatchMixNormWarning)]

    model = cls(**kwargs).train()
    caught = warnings_at(4, model)
    stages = [m for m in model.modules() if isinstance(m, GGhostStage)]
    assert len(caught) == len(stages), 'one warning per stage at batch 4'
    assert not warnings_at(4, model)  # once: not at every iteration
    message = str(caught[0].message)
    assert '4 pooled sample(s)' in message and 'norm_eval=True' in message
    assert '\n' not in message
    assert warnings_at(1)  # batch 1 too (running statistics are used)
    assert not warnings_at(MIX_MIN_BATCH)
    assert not warnings_at(4, norm_eval=True)
    assert not warnings_at(4, mix_norm_eval=True)
    assert not warnings_at(4, mix=False)
    model = cls(**kwargs).eval()
    with warnings.catch_warnings():
        warnings.simplefilter('error', SmallBatchMixNormWarning)
        model(torch.randn(2, 3, 32, 32))


@pytest.mark.parametrize('spec', MIX_SPECS, ids=['resnet18', 'regnetx_200mf'])
def test_mix_norm_eval_keeps_only_the_mix_bns_on_running_statistics(spec):
    """mix_norm_eval: in training the mix's BNs normalise with (and keep)
    their running statistics, every other BN trains as before; the keys
    and the eval forward do not change; gradients still reach the mix."""
    cls, kwargs = spec
    torch.manual_seed(0)
    ref = cls(**kwargs)
    model = cls(**kwargs, mix_norm_eval=True)
    model.load_state_dict(ref.state_dict())
    assert model.state_dict().keys() == ref.state_dict().keys()
    randomize_norms(model)
    ref.load_state_dict(model.state_dict())
    mix_bns = {id(m) for st in model.modules() if isinstance(st, GGhostStage)
               for m in st.mix.modules() if isinstance(m, _BatchNorm)}
    assert mix_bns
    model.train()
    for m in model.modules():
        if isinstance(m, _BatchNorm):
            assert m.training == (id(m) not in mix_bns)
    before = copy.deepcopy(model.state_dict())
    x = torch.randn(4, 3, 64, 64)
    sum(o.sum() for o in model(x)).backward()
    after = model.state_dict()
    for name, m in model.named_modules():
        if isinstance(m, _BatchNorm):
            moved = not torch.equal(before[name + '.running_mean'],
                                    after[name + '.running_mean'])
            assert moved == (id(m) not in mix_bns), name
            if id(m) in mix_bns:
                assert m.weight.grad is not None
    model.eval()
    ref.load_state_dict(model.state_dict())
    ref.eval()
    with torch.no_grad():
        for a, b in zip(model(x), ref(x)):
            torch.testing.assert_close(a, b)


@pytest.mark.parametrize('spec', [BACKBONES[1], BACKBONES[5], BACKBONES[7]],
                         ids=[_ids(BACKBONES[i]) for i in (1, 5, 7)])
def test_deploy_form_exports_to_onnx_with_eval_outputs(spec, tmp_path):
    """mmdeploy calls switch_to_deploy() before it traces the model: the
    deploy form's buffer writes (``out=``) must not reach the tracer, or
    the ONNX graph computes something else (seen: 1 box instead of 50)."""
    pytest.importorskip('onnxruntime')
    from mmdet_gghost.export import export_onnx, run_onnxruntime
    cls, kwargs = spec
    torch.manual_seed(0)
    model = cls(**kwargs)
    model.init_weights()
    randomize_norms(model).eval()
    x = torch.randn(1, 3, 64, 96)
    with torch.no_grad():
        expected = model(x)
    model.switch_to_deploy()
    onnx_file = str(tmp_path / 'backbone.onnx')
    export_onnx(model, onnx_file, input_shape=(1, 3, 64, 64))
    for a, b in zip(expected, run_onnxruntime(onnx_file, x)):
        torch.testing.assert_close(torch.from_numpy(b), a, rtol=1e-4,
                                   atol=1e-4 * a.abs().max())
