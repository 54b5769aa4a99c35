"""Shared fixtures for the whole suite.

``restore_global_state`` (autouse): what a test does to process-wide state
that later tests read is undone after it: mmengine's default scope
(``init_default_scope``, ``register_all_modules``), its current logger and
``sys.path`` (tools loaded in-process put the repository first). So no test
passes or fails because of the module that ran before it.
"""
import contextlib
import sys

import pytest


def _instances():
    """mmengine's global instances by kind (the current one is the last):
    default scopes, and loggers (a tool run in-process leaves its logger
    current, writing to that test's captured, later closed, streams)."""
    from mmengine.logging import MMLogger
    from mmengine.registry import DefaultScope
    return {'default_scope': DefaultScope._instance_dict,
            'logger': MMLogger._instance_dict}


@contextlib.contextmanager
def global_state_restored():
    """Restore ``sys.path`` and mmengine's default scopes and loggers on
    exit; yields a dict that then says what had changed (``sys.path``,
    ``default_scope``, ``logger``)."""
    path = list(sys.path)
    saved = {kind: dict(d) for kind, d in _instances().items()}
    changed = {}
    try:
        yield changed
    finally:
        if sys.path != path:
            changed['sys.path'] = [p for p in sys.path if p not in path]
            sys.path[:] = path
        for kind, now in _instances().items():
            if list(now.items()) != list(saved[kind].items()):
                changed[kind] = list(now)
                now.clear()
                now.update(saved[kind])


@pytest.fixture(autouse=True)
def restore_global_state():
    with global_state_restored():
        yield
