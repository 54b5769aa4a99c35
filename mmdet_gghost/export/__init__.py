"""Deploy paths: ONNX export with onnxruntime parity (:mod:`.onnx_export`
of the part chosen in :mod:`.modules`), and inference forms of a model
timed against each other (:mod:`.forms`)."""
from ..analysis import init_weights_quietly
from .forms import deploy_forms, time_forms
from .modules import (_flatten, build_export_model, export_module,
                      randomize_bn_stats)
from .onnx_export import (export_config, export_onnx, format_report,
                          max_rel_err, require_onnx, run_onnxruntime,
                          verify_onnx)

__all__ = [
    'require_onnx', 'build_export_model', 'randomize_bn_stats',
    'init_weights_quietly', 'export_module', 'export_onnx',
    'run_onnxruntime', 'max_rel_err', 'verify_onnx', 'export_config',
    'format_report', 'deploy_forms', 'time_forms'
]
