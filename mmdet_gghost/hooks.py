"""Crash-safe checkpoints (:class:`CrashSafeCheckpointHook`); the last one is
found by :func:`mmdet_gghost.checkpoint.resolve_last_checkpoint`."""
import glob
import os
import os.path as osp

from mmengine.dist import is_main_process
from mmengine.fileio import LocalBackend
from mmengine.hooks import CheckpointHook
from mmengine.registry import HOOKS

from .registry import register_once

_TMP_PREFIX = '.tmp_'


class CrashSafeCheckpointHook(CheckpointHook):
    """``CheckpointHook`` (same arguments) whose checkpoints are complete or
    absent: mmengine 0.10.7 deletes the oldest kept checkpoint *before*
    writing the new one in place (with ``max_keep_ckpts=1`` a kill during
    the write leaves only a partial file).  This hook writes to a hidden
    temporary name, renames it (``os.replace``: atomic on one file system),
    updates ``last_checkpoint`` the same way, and only then removes the
    checkpoints beyond ``max_keep_ckpts``.  Remote ``out_dir`` backends (no
    rename) keep mmengine's behaviour.
    """

    def before_train(self, runner) -> None:
        super().before_train(runner)
        if self._is_local() and is_main_process():
            # partial files of a run killed while writing
            for path in glob.glob(osp.join(self.out_dir, _TMP_PREFIX + '*')):
                os.remove(path)

    def _is_local(self) -> bool:
        return isinstance(self.file_backend, LocalBackend)

    def _outdated_steps(self, runner, step) -> list:
        """Update ``keep_ckpt_ids`` as mmengine does, but return the steps
        to delete instead of deleting them now."""
        if self.max_keep_ckpts <= 0 or (self.keep_ckpt_ids
                                        and self.keep_ckpt_ids[-1] == step):
            return []
        outdated = []
        if len(self.keep_ckpt_ids) == self.max_keep_ckpts:
            outdated.append(self.keep_ckpt_ids.popleft())
        self.keep_ckpt_ids.append(step)
        runner.message_hub.update_info('keep_ckpt_ids',
                                       list(self.keep_ckpt_ids))
        return outdated

    def _save_checkpoint_with_step(self, runner, step, meta):
        if not self._is_local():
            return super()._save_checkpoint_with_step(runner, step, meta)
        outdated = self._outdated_steps(runner, step)
        filename = self.filename_tmpl.format(step)
        self.last_ckpt = osp.join(self.out_dir, filename)
        runner.message_hub.update_info('last_ckpt', self.last_ckpt)
        runner.save_checkpoint(
            self.out_dir, _TMP_PREFIX + filename, self.file_client_args,
            save_optimizer=self.save_optimizer,
            save_param_scheduler=self.save_param_scheduler, meta=meta,
            by_epoch=self.by_epoch, backend_args=self.backend_args,
            **self.args)
        if not is_main_process():
            return
        os.replace(osp.join(self.out_dir, _TMP_PREFIX + filename),
                   self.last_ckpt)
        record = osp.join(runner.work_dir, 'last_checkpoint')
        tmp = osp.join(runner.work_dir, _TMP_PREFIX + 'last_checkpoint')
        with open(tmp, 'w') as f:
            f.write(self.last_ckpt)
        os.replace(tmp, record)
        for old in outdated:
            path = osp.join(self.out_dir, self.filename_tmpl.format(old))
            if osp.isfile(path):
                os.remove(path)


register_once(HOOKS, CrashSafeCheckpointHook)


def use_crash_safe_checkpoints(cfg) -> bool:
    """Swap a ``CheckpointHook`` in ``default_hooks.checkpoint`` for
    :class:`CrashSafeCheckpointHook`; returns whether it was swapped."""
    hook = (cfg.get('default_hooks', None) or {}).get('checkpoint', None)
    if not isinstance(hook, dict) or hook.get('type') not in (
            'CheckpointHook', 'mmengine.CheckpointHook'):
        return False
    hook['type'] = 'CrashSafeCheckpointHook'
    return True
