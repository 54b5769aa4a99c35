"""The environment the numbers were measured with: mmengine's
``collect_env()`` plus what it lacks for a timing (date, CPU model and
threads, the device used, the OpenMMLab toolbox versions)."""
import datetime
import os
import platform

import torch

__all__ = ['collect_env']

# not needed to reproduce a timing: the long build description (~40
# lines) and the seed numpy happens to have
_DROPPED = ('PyTorch compiling details', 'numpy_random_seed')


def collect_env(device: str = 'cpu') -> dict:
    """Hardware and software the numbers were measured with.

    Returns:
        dict: mmengine's ``collect_env()`` keys (``Python``, ``PyTorch``,
        ``MMEngine``, ``GCC``, ``CUDA available``, ``GPU i`` ...) without
        the build details and numpy's seed; and ``date``, ``platform``,
        ``cpu`` (model name), ``cpu_count``, ``torch_threads``,
        ``torch_interop_threads``, ``device``, the versions of ``mmcv``,
        ``mmdet``, ``mmpretrain``, ``mmdet_gghost``, ``numpy`` (``None`` if
        absent) and, on a CUDA device, ``gpu`` (the one used), ``cuda``,
        ``cudnn``, ``cudnn_benchmark``.
    """
    from mmengine.utils.dl_utils import collect_env as mmengine_env
    env = {k: v for k, v in mmengine_env().items() if k not in _DROPPED}
    env.update(
        date=datetime.datetime.now().astimezone().isoformat(
            timespec='seconds'),
        platform=platform.platform(),
        cpu=_cpu_model(),
        cpu_count=os.cpu_count(),
        torch_threads=torch.get_num_threads(),
        torch_interop_threads=torch.get_num_interop_threads(),
        device=device)
    for mod in ('mmcv', 'mmdet', 'mmpretrain', 'mmdet_gghost', 'numpy'):
        try:
            env[mod] = __import__(mod).__version__
        except Exception:  # noqa: BLE001  (absent or broken: record it)
            env[mod] = None
    if str(device).startswith('cuda') and torch.cuda.is_available():
        dev = torch.device(device)
        env.update(
            gpu=torch.cuda.get_device_name(dev),
            cuda=torch.version.cuda,
            cudnn=torch.backends.cudnn.version(),
            cudnn_benchmark=torch.backends.cudnn.benchmark)
    return env


def _cpu_model() -> str:
    try:
        with open('/proc/cpuinfo') as f:
            for line in f:
                if line.lower().startswith('model name'):
                    return line.split(':', 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()
