"""Shared fixtures for the whole suite.

``restore_global_state`` (autouse): whatever a test does to the process-wide
state that later tests read — mmengine's default scope (``init_default_scope``,
``register_all_modules``) and ``sys.path`` (tools loaded in-process put the
repository first) — is undone after it, so no test passes or fails because
of the module that ran before it.
"""
import contextlib
import sys

import pytest


def _default_scopes():
    from mmengine.registry import DefaultScope
    return DefaultScope._instance_dict  # the current scope is the last one


@contextlib.contextmanager
def global_state_restored():
    """Restore ``sys.path`` and mmengine's default scopes on exit; yields a
    dict that then says what had changed (``sys.path``, ``default_scope``)."""
    path, scopes = list(sys.path), dict(_default_scopes())
    changed = {}
    try:
        yield changed
    finally:
        if sys.path != path:
            changed['sys.path'] = [p for p in sys.path if p not in path]
            sys.path[:] = path
        now = _default_scopes()
        if list(now.items()) != list(scopes.items()):
            changed['default_scope'] = list(now)
            now.clear()
            now.update(scopes)


@pytest.fixture(autouse=True)
def restore_global_state():
    with global_state_restored():
        yield
