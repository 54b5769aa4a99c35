"""ONNX Runtime as a runtime of the FPS benchmark (``tools/benchmark.py
--onnxruntime``): the PyTorch row's weights, ``test_cfg`` and images,
exported through mmdeploy (dynamic shapes) and timed as mmdeploy's
``End2EndModel.test_step(batch)`` (preprocessing, graph with NMS, box
rescaling) with as many intra-op threads as torch uses."""
import os
import os.path as osp
import tempfile
from contextlib import nullcontext
from typing import Optional, Sequence

import torch

from ..deploy.mmdeploy_export import (build_models, export_end2end,
                                      load_deploy_configs)
from .models import load_model, make_step_fn


def onnxruntime_entry(entry: dict, cfg_path: str, checkpoint: Optional[str],
                      batches: Sequence[dict], score_thr=None,
                      max_per_img: Optional[int] = None,
                      work_dir: Optional[str] = None) -> dict:
    """A benchmark entry (``name``, ``model``, ``info``, ``fn``, ...) timing
    the ONNX Runtime form of the PyTorch ``entry`` built from ``cfg_path``,
    ``checkpoint``, ``test_cfg`` values ``score_thr``/``max_per_img`` and
    fed ``batches`` (its ``in_shape``, ``report`` and ``score_thr`` are
    reused). ``end2end.onnx`` goes to ``work_dir`` (default: a temporary
    folder, removed once ONNX Runtime has loaded the graph)."""
    model, cfg, info = load_model(cfg_path, checkpoint, score_thr=score_thr,
                                  max_per_img=max_per_img)
    with (nullcontext(work_dir) if work_dir else
          tempfile.TemporaryDirectory(prefix='bench-onnxruntime-')) as out:
        ckpt = osp.join(out, 'weights.pth')
        os.makedirs(out, exist_ok=True)
        torch.save(dict(state_dict=model.state_dict()), ckpt)
        model_cfg, deploy_config, _ = load_deploy_configs(cfg)
        image = batches[0]['inputs'][0].permute(1, 2, 0).numpy()  # HWC
        onnx_file = export_end2end(model_cfg, deploy_config, ckpt, out, image)
        _, _, ort_model = build_models(model_cfg, deploy_config, None,
                                       onnx_file,
                                       threads=torch.get_num_threads())
    return dict(entry, name=f'{entry["name"]} (onnxruntime)', model=ort_model,
                info=dict(info, runtime='onnxruntime', bn_fused=None),
                fn=make_step_fn(ort_model, batches))  # its test_step
