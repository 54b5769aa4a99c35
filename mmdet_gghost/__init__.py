"""G-GhostNet backbones for OpenMMLab (mmdet and mmpretrain)."""
__version__ = '0.1.0'
