"""Backbones: the G-Ghost stage and the networks built from it."""
from .base import MultiStageBackbone, load_pretrained
from .blocks import ResidualBlock
from .cghostnet import CGhostNet, GhostBottleneck, GhostModule
from .converters import (convert_official_gghost_regnet,
                         convert_torchvision_resnet, is_official_layout,
                         is_torchvision_resnet_layout)
from .deploy import (INFERENCE_FORMS, deploy_model, fuse_model,
                     inference_form, to_deploy_form)
from .gghost_regnet import GGhostRegNet
from .gghost_resnet import GGhostResNet
from .gghost_stage import GGhostStage, split_channels

__all__ = [
    'GGhostStage', 'split_channels', 'ResidualBlock', 'MultiStageBackbone',
    'GGhostResNet', 'GGhostRegNet', 'CGhostNet', 'GhostModule',
    'GhostBottleneck', 'fuse_model', 'deploy_model', 'to_deploy_form',
    'INFERENCE_FORMS', 'inference_form',
    'load_pretrained',
    'convert_official_gghost_regnet', 'is_official_layout',
    'convert_torchvision_resnet', 'is_torchvision_resnet_layout'
]
