"""Inference- and training-speed benchmark for mmdet and mmpretrain
configs (CLI: ``tools/benchmark.py``); :mod:`.timing` is the one timing
core, :mod:`.training` the timed training step."""
from .forms import inference_forms, time_forms
from .inputs import calibrate_score_thr, make_inputs, make_train_inputs
from .models import load_model, make_step_fn, outputs_finite
from .reports import (CSV_FIELDS, collect_env, load_metric, plot_map_vs_fps,
                      write_reports)
from .runner import run_benchmark
from .settings import BenchmarkSettings, UsageError
from .timing import summarize, sync_for, time_first_call, time_interleaved
from .training import (build_train_optim_wrapper, make_train_step_fn,
                       train_mode)

__all__ = [
    'load_model', 'make_inputs', 'make_step_fn', 'time_interleaved',
    'time_first_call', 'sync_for', 'summarize', 'write_reports',
    'plot_map_vs_fps', 'load_metric', 'collect_env', 'outputs_finite',
    'run_benchmark', 'BenchmarkSettings', 'calibrate_score_thr',
    'CSV_FIELDS', 'UsageError', 'inference_forms', 'time_forms',
    'make_train_inputs', 'build_train_optim_wrapper', 'make_train_step_fn',
    'train_mode'
]
