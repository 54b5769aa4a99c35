"""Deploy paths: ONNX export with onnxruntime parity
(:mod:`.onnx_export`, of the part chosen in :mod:`.modules`), and the
fused / channels-last / compiled forms of a model timed against each other
(:mod:`.forms`)."""
from ..analysis import init_weights_quietly
from .forms import deploy_forms, time_forms
from .modules import (_count_bn, _flatten, build_export_model, export_module,
                      randomize_bn_stats)
from .onnx_export import (DEFAULT_OPSET, DEFAULT_TOL, DEPLOY_INSTALL_HINT,
                          EXPORTER, compare_outputs, export_config,
                          export_onnx, format_report, max_rel_err,
                          require_onnx, require_onnxruntime, run_onnxruntime,
                          verify_onnx)

__all__ = [
    'DEPLOY_INSTALL_HINT', 'EXPORTER', 'DEFAULT_TOL', 'DEFAULT_OPSET',
    'require_onnx', 'require_onnxruntime', 'build_export_model',
    'randomize_bn_stats', 'init_weights_quietly', 'export_module',
    'export_onnx', 'run_onnxruntime', 'max_rel_err', 'compare_outputs',
    'verify_onnx', 'export_config', 'format_report', 'deploy_forms',
    'time_forms'
]
