"""Model analysis: complexity per backbone stage (:mod:`.complexity`) and
device-launching ops per forward (:mod:`.ops`).  The model builders of
:mod:`mmdet_gghost.apis.build` the analysis tools use stay importable here.
"""
from ..apis.build import (arch_to_backbone_cfg, build_backbone_from_arch,
                          build_model_from_config, init_weights_quietly)
from .complexity import (complexity_notes, complexity_report,
                         complexity_table, count_bn_layers, format_count,
                         infer_stage_groups, print_complexity_report)
from .ops import count_ops

__all__ = [
    'arch_to_backbone_cfg', 'build_backbone_from_arch',
    'build_model_from_config', 'init_weights_quietly', 'complexity_notes',
    'complexity_report', 'complexity_table', 'count_bn_layers', 'format_count',
    'infer_stage_groups', 'print_complexity_report', 'count_ops'
]
