"""An independent re-implementation of the official G-Ghost RegNet *layout*
(module names, shapes and forward), written from ../shared/PAPER.md, used
only by the tests: its state dict has the official key names, so converting
it and loading it into ours must reproduce its outputs exactly.
"""
import torch
from torch import nn


def _bn(c):
    return nn.BatchNorm2d(c)


class RefBlock(nn.Module):
    """RegNetX block with the official names conv1/bn1 .. conv3/bn3,
    downsample.{0,1}."""

    def __init__(self, cin, cout, stride=1, group_width=1, project=False):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 1, bias=False)
        self.bn1 = _bn(cout)
        groups = cout // min(cout, group_width)
        self.conv2 = nn.Conv2d(cout, cout, 3, stride, 1, groups=groups,
                               bias=False)
        self.bn2 = _bn(cout)
        self.conv3 = nn.Conv2d(cout, cout, 1, bias=False)
        self.bn3 = _bn(cout)
        self.downsample = nn.Sequential(
            nn.Conv2d(cin, cout, 1, stride, bias=False),
            _bn(cout)) if project else None

    def forward(self, x):
        out = torch.relu(self.bn1(self.conv1(x)))
        out = torch.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        shortcut = x if self.downsample is None else self.downsample(x)
        return torch.relu(out + shortcut)


class RefStage(nn.Module):
    """base / layers / cheap / merge / end, as PAPER.md describes."""

    def __init__(self, cin, planes, group_width, blocks, cheap_ratio=0.5):
        super().__init__()
        self.base = RefBlock(cin, planes, 2, group_width, project=True)
        self.end = RefBlock(planes, planes, 1, group_width)
        gw = int(group_width * 0.75)
        raw = int(planes * (1 - cheap_ratio) / gw) * gw
        cheap = planes - raw
        self.raw = raw
        self.merge = nn.Sequential(
            nn.AdaptiveAvgPool2d(1),
            nn.Conv2d(planes + raw * (blocks - 2), cheap, 1, bias=False),
            _bn(cheap), nn.ReLU(),
            nn.Conv2d(cheap, cheap, 1, bias=False), _bn(cheap))
        self.cheap = nn.Sequential(nn.Conv2d(cheap, cheap, 1, bias=False),
                                   _bn(cheap))
        self.layers = nn.Sequential(
            *[RefBlock(raw, raw, 1, gw) for _ in range(blocks - 2)])

    def forward(self, x):
        x0 = self.base(x)
        feats = [x0]
        e = x0[:, :self.raw]
        for layer in self.layers:
            e = layer(e)
            feats.append(e)
        m = self.merge(torch.cat(feats, 1))
        c = torch.relu(self.cheap(x0[:, self.raw:]) + m)
        return self.end(torch.cat([e, c], 1))


class RefGGhostRegNet(nn.Module):

    def __init__(self, depths, widths, group_width, num_classes=1000):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 32, 3, 2, 1, bias=False)
        self.bn1 = _bn(32)
        cin = 32
        for i, (d, w) in enumerate(zip(depths, widths)):
            if i == 2 or (i in (1, 3) and d > 2):
                layer = RefStage(cin, w, group_width, d)
            else:
                layer = nn.Sequential(
                    RefBlock(cin, w, 2, group_width, project=True),
                    *[RefBlock(w, w, 1, group_width) for _ in range(d - 1)])
            setattr(self, f'layer{i + 1}', layer)
            cin = w
        self.fc = nn.Linear(cin, num_classes)

    def features(self, x):
        x = torch.relu(self.bn1(self.conv1(x)))
        outs = []
        for i in range(1, 5):
            x = getattr(self, f'layer{i}')(x)
            outs.append(x)
        return outs


def randomize_norms(model, seed=0):
    """Give every BN non-trivial statistics and affine params, so that a
    parity check also checks that norms land in the right place."""
    g = torch.Generator().manual_seed(seed)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            n = m.num_features
            m.running_mean.copy_(torch.randn(n, generator=g) * 0.1)
            m.running_var.copy_(torch.rand(n, generator=g) + 0.5)
            m.weight.data.copy_(torch.rand(n, generator=g) + 0.5)
            m.bias.data.copy_(torch.randn(n, generator=g) * 0.1)
    return model
