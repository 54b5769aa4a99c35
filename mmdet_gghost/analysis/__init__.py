"""Model analysis: complexity per backbone stage and ops per forward.

* :mod:`.complexity` -- params, MACs, activations and ops per stage
  (mmengine's analyzers; the definitions are in its docstring);
* :mod:`.ops` -- device-launching aten ops per forward (:func:`count_ops`);
* :mod:`.format` -- the table and notes printed for a report.

The model builders live in :mod:`mmdet_gghost.apis.build`; their names
stay importable from here.
"""
from ..apis.build import (ARCH_EXAMPLES, arch_to_backbone_cfg,
                          build_backbone_from_arch, build_model,
                          build_model_from_config, init_weights_quietly,
                          load_config, strip_pretrained)
from .complexity import complexity_report, count_bn_layers, infer_stage_groups
from .format import (complexity_notes, complexity_table, format_count,
                     print_complexity_report)
from .ops import NO_KERNEL_OPS, count_ops, is_device_op

__all__ = [
    'arch_to_backbone_cfg', 'build_backbone_from_arch', 'build_model',
    'build_model_from_config', 'load_config', 'infer_stage_groups',
    'complexity_report', 'complexity_table', 'complexity_notes',
    'print_complexity_report', 'count_ops', 'is_device_op', 'format_count',
    'count_bn_layers', 'ARCH_EXAMPLES', 'NO_KERNEL_OPS', 'strip_pretrained',
    'init_weights_quietly'
]
