"""What is exported (:func:`export_module`): the part of a model as a
tensor-in, flat-tuple-out module, and the model of a config built for
exporting (:func:`build_export_model`)."""
from typing import List, Optional, Tuple

import torch
import torch.nn as nn


@torch.no_grad()
def randomize_bn_stats(model: nn.Module, seed: int = 0) -> nn.Module:
    """Give every BN non-trivial running statistics and affine parameters.

    Freshly initialised BNs (mean 0, var 1, weight 1 -- or 0 for
    zero-initialised residual branches --, bias 0) make folding them almost
    a no-op, so a parity check on such weights would not notice a BN folded
    into the wrong conv. Values: mean ~ N(0, 0.1), var ~ U(0.5, 1.5),
    weight ~ U(0.5, 1.5), bias ~ N(0, 0.1).
    """
    g = torch.Generator().manual_seed(seed)
    for m in model.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            n = m.num_features
            if m.running_mean is not None:
                m.running_mean.copy_(torch.randn(n, generator=g) * 0.1)
                m.running_var.copy_(torch.rand(n, generator=g) + 0.5)
            if m.weight is not None:
                m.weight.copy_(torch.rand(n, generator=g) + 0.5)
                m.bias.copy_(torch.randn(n, generator=g) * 0.1)
    return model


def build_export_model(config, checkpoint: Optional[str] = None,
                       seed: int = 0, allow_partial_checkpoint: bool = False):
    """``(model, cfg, scope)`` of an mmdet or mmpretrain config (``scope``
    ``'mmdet'`` or ``'mmpretrain'``), built by
    :func:`mmdet_gghost.apis.build.build_model` (eval mode, CPU). Without a
    checkpoint every BN also gets random statistics
    (:func:`randomize_bn_stats`): parity checks exercise the BN folding."""
    from ..apis.build import build_model
    model = build_model(config, checkpoint, init_seed=seed,
                        allow_partial_checkpoint=allow_partial_checkpoint)
    if checkpoint is None:
        randomize_bn_stats(model, seed)
    return model, model.cfg, model.cfg.get('default_scope', None) or 'mmdet'


class _Exportable(nn.Module):
    """Tensor in, flat tuple of tensors out (what ONNX export wants)."""

    def __init__(self, model: nn.Module, kind: str):
        super().__init__()
        self.model, self.kind = model, kind

    def raw(self, x):
        """The model's own (nested) tensor outputs."""
        if self.kind == 'backbone':
            return self.model(x)
        if self.kind == 'classifier':
            return self.model(x, mode='tensor')
        return self.model._forward(x)  # detector

    def forward(self, x):
        return tuple(flatten_outputs(self.raw(x)))


def flatten_outputs(out) -> List[torch.Tensor]:
    if torch.is_tensor(out):
        return [out]
    return [t for o in out for t in flatten_outputs(o)]


def _output_names(kind: str, raw_out) -> List[str]:
    n = len(flatten_outputs(raw_out))
    if kind == 'backbone':
        return [f'feat_{i}' for i in range(n)]
    if kind == 'classifier':
        return (['logits'] if torch.is_tensor(raw_out) else
                [f'logits_{i}' for i in range(n)])
    # detector: (cls_scores, bbox_preds[, centernesses]) per level
    groups = ('cls_score', 'bbox_pred', 'centerness')
    names = []
    for g, part in enumerate(raw_out):
        base = groups[g] if len(raw_out) <= len(groups) else f'out{g}'
        names += [f'{base}_{i}' for i in range(len(flatten_outputs(part)))]
    return names


def export_module(model: nn.Module, scope: Optional[str] = None,
                  target: str = 'model') -> Tuple[nn.Module, str]:
    """``(module, kind)``: the part of ``model`` to export, wrapped to
    return a flat tuple; ``kind`` is ``'backbone'``, ``'classifier'`` or
    ``'detector'``. The input is the *preprocessed* tensor (normalised; for
    detectors padded to a multiple of 32, which H and W must stay, for FPN).
    ``target='backbone'`` (or a bare backbone ``model``): the feature maps
    of ``out_indices`` (``feat_0`` ...). ``target='model'``: a classifier's
    ``model(x, mode='tensor')`` -> ``logits``; a single-stage detector's
    ``model._forward(x)`` -> raw head outputs per level (``cls_score_*``,
    ``bbox_pred_*``, ``centerness_*``), decoding and NMS left out.
    Two-stage detectors are refused (RPN proposals need data samples).
    ``scope`` (``'mmdet'`` / ``'mmpretrain'``) is only used in messages."""
    if target not in ('backbone', 'model'):
        raise ValueError(f"target must be 'backbone' or 'model', got "
                         f'{target!r}')
    if not isinstance(getattr(model, 'backbone', None), nn.Module):
        # a bare backbone: exporting "the model" means the backbone too
        return _Exportable(model, 'backbone').eval(), 'backbone'
    if target == 'backbone':
        return _Exportable(model.backbone, 'backbone').eval(), 'backbone'
    from mmdet.models.detectors import SingleStageDetector, TwoStageDetector
    if isinstance(model, TwoStageDetector):
        raise ValueError(
            f'{type(model).__name__} is a two-stage detector: its tensor '
            'forward needs data samples for the RPN proposals, which an ONNX '
            'graph cannot take; export its backbone (--target backbone) or '
            'use mmdeploy for the whole detector')
    if isinstance(model, SingleStageDetector):
        return _Exportable(model, 'detector').eval(), 'detector'
    if hasattr(model, 'head') and hasattr(model, 'extract_feat'):
        return _Exportable(model, 'classifier').eval(), 'classifier'
    raise ValueError(
        f'do not know how to export the whole {type(model).__name__} '
        f'(scope {scope}); use --target backbone')
