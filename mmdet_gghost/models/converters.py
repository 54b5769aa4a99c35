"""Official G-Ghost RegNet checkpoints -> our (mmpretrain) key names;
torchvision ResNet checkpoints too (the official code names its plain
blocks as torchvision does).

The official ``g_ghost_regnet.py`` names parameters::

    conv1, bn1                          stem
    layerK.I.{conv1,bn1,...,conv3,bn3}  plain stage blocks
    layerK.I.downsample.{0,1}           projection conv, norm
    layerK.base.*, layerK.end.*         first / end block of a G-Ghost stage
    layerK.layers.I.*                   complex blocks
    layerK.cheap.{0,1}                  cheap conv, norm
    layerK.merge.{1,2,4,5}              mix: conv, norm, (ReLU), conv, norm
    fc.{weight,bias}                    classifier

ours::

    backbone.stem.{conv,bn}
    backbone.layerK.I.convJ.{conv,bn}, backbone.layerK.I.downsample.{conv,bn}
    backbone.layerK.first.*, backbone.layerK.end.*
    backbone.layerK.complex_blocks.I.*
    backbone.layerK.cheap.{conv,bn}
    backbone.layerK.mix.{0,1}.{conv,bn}
    head.fc.{weight,bias}
"""
import re

# Official sub-module pattern -> ours, applied to the part after a block or
# stage prefix. Norm buffers/params share the module's suffix.
_BLOCK_RULES = [
    (r'conv([123])\.weight$', r'conv\1.conv.weight'),
    (r'bn([123])\.(.+)$', r'conv\1.bn.\2'),
    (r'downsample\.0\.weight$', r'downsample.conv.weight'),
    (r'downsample\.1\.(.+)$', r'downsample.bn.\1'),
]
_STAGE_RULES = [
    (r'cheap\.0\.weight$', r'cheap.conv.weight'),
    (r'cheap\.1\.(.+)$', r'cheap.bn.\1'),
    (r'merge\.1\.weight$', r'mix.0.conv.weight'),
    (r'merge\.2\.(.+)$', r'mix.0.bn.\1'),
    (r'merge\.4\.weight$', r'mix.1.conv.weight'),
    (r'merge\.5\.(.+)$', r'mix.1.bn.\1'),
]


def is_official_layout(state_dict):
    """Whether ``state_dict`` uses the official G-Ghost RegNet key names."""
    return any(re.search(r'(^|\.)layer\d\.(base|merge|cheap\.[01])\.', k)
               for k in state_dict)


def is_torchvision_resnet_layout(state_dict):
    """Whether ``state_dict`` is a torchvision ResNet's (``conv1``, ``bn1``,
    ``layerK.I.convJ``, ``fc``; e.g. ``torchvision://resnet34``): it loads
    into a ``GGhostResNet`` without G-Ghost stages (``gghost_stages=()``):
    :func:`convert_torchvision_resnet`."""
    return ('conv1.weight' in state_dict and 'bn1.running_mean' in state_dict
            and any(re.match(r'layer\d\.\d+\.conv1\.weight$', k)
                    for k in state_dict)
            and not is_official_layout(state_dict))


def _convert_block(rest):
    for pattern, repl in _BLOCK_RULES:
        if re.match(pattern, rest):
            return re.sub(pattern, repl, rest)
    return None


def convert_key(key):
    """Our key for one official key, or ``None`` if it does not map."""
    key = re.sub(r'^module\.', '', key)  # DataParallel checkpoints
    if key in ('fc.weight', 'fc.bias'):
        return 'head.' + key
    m = re.match(r'^conv1\.weight$', key)
    if m:
        return 'backbone.stem.conv.weight'
    m = re.match(r'^bn1\.(.+)$', key)
    if m:
        return f'backbone.stem.bn.{m.group(1)}'
    m = re.match(r'^(layer\d)\.(.+)$', key)
    if not m:
        return None
    stage, rest = m.groups()
    for pattern, repl in _STAGE_RULES:
        if re.match(pattern, rest):
            return f'backbone.{stage}.' + re.sub(pattern, repl, rest)
    m = re.match(r'^(base|end|layers\.\d+|\d+)\.(.+)$', rest)
    if not m:
        return None
    block, block_rest = m.groups()
    block = {'base': 'first', 'end': 'end'}.get(
        block, block.replace('layers.', 'complex_blocks.'))
    new_rest = _convert_block(block_rest)
    return None if new_rest is None else f'backbone.{stage}.{block}.{new_rest}'


def convert_official_gghost_regnet(state_dict):
    """Convert an official state dict.

    Returns:
        tuple[dict, list[str]]: the converted state dict (``backbone.*`` and
        ``head.fc.*`` keys) and the official keys that did not map (they are
        reported, never dropped silently).
    """
    converted, unmapped = {}, []
    for key, value in state_dict.items():
        new_key = convert_key(key)
        if new_key is None:
            unmapped.append(key)
        else:
            converted[new_key] = value
    return converted, unmapped


def convert_torchvision_resnet(state_dict):
    """A torchvision ResNet state dict in ``GGhostResNet``'s key names (the
    official code's block rules; the stem is ``stem.0``, its ConvModule, in
    front of the max-pool). Returns what
    :func:`convert_official_gghost_regnet` returns."""
    converted, unmapped = convert_official_gghost_regnet(state_dict)
    return {re.sub(r'^backbone\.stem\.', 'backbone.stem.0.', k): v
            for k, v in converted.items()}, unmapped
