"""Inference-speed benchmark for mmdet and mmpretrain configs
(``tools/benchmark.py`` is its CLI).

- :mod:`.timing`: the one timing core (interleaved rounds, synchronisation,
  first call, medians, per-round FPS ratios), also used by the deploy-form
  comparison (:func:`mmdet_gghost.export.time_forms`);
- :mod:`.settings`: :class:`BenchmarkSettings`, the options of a run;
- :mod:`.models`: config (+ checkpoint) -> model in the benchmarked form;
- :mod:`.inputs`: synthetic / real batches, score-threshold calibration;
- :mod:`.steps`: what one timed call runs, checks of its output;
- :mod:`.reports`, :mod:`.env`: tables, files, plot, environment;
- :mod:`.runner`: :func:`run_benchmark`, the whole run.
"""
from .env import collect_env
from .inputs import (DEFAULT_SHAPES, calibrate_score_thr, make_data_inputs,
                     make_inputs)
from .models import fuse_bn, load_model
from .reports import (CSV_FIELDS, load_metric, make_console,
                      plot_map_vs_fps, print_table, table_rows,
                      write_reports)
from .runner import run_benchmark
from .settings import BenchmarkSettings, UsageError
from .steps import count_detections, make_step_fn, outputs_finite
from .timing import summarize, sync_for, time_first_call, time_interleaved

__all__ = [
    'load_model', 'fuse_bn', 'make_inputs', 'make_data_inputs',
    'make_step_fn', 'time_interleaved', 'time_first_call', 'sync_for',
    'summarize', 'write_reports', 'print_table', 'table_rows',
    'plot_map_vs_fps', 'load_metric', 'collect_env', 'count_detections',
    'outputs_finite', 'make_console', 'run_benchmark', 'BenchmarkSettings',
    'calibrate_score_thr', 'CSV_FIELDS', 'DEFAULT_SHAPES', 'UsageError'
]
