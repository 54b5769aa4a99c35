"""The suite's guard of process-wide state (tests/conftest.py)."""
import sys

from mmengine.registry import DefaultScope, init_default_scope

from conftest import global_state_restored


def _current_scope():
    current = DefaultScope.get_current_instance()
    return None if current is None else current.scope_name


def test_default_scope_and_sys_path_are_restored():
    scope, path = _current_scope(), list(sys.path)
    with global_state_restored() as changed:
        init_default_scope('mmpretrain' if scope != 'mmpretrain' else 'mmdet')
        sys.path.insert(0, '/nonexistent/tools')
        assert _current_scope() != scope
    assert _current_scope() == scope
    assert sys.path == path
    assert changed['sys.path'] == ['/nonexistent/tools']
    assert 'default_scope' in changed


def test_nothing_reported_when_nothing_changed():
    with global_state_restored() as changed:
        pass
    assert changed == {}


def test_each_test_starts_without_a_leftover_scope_a():
    """This and the next test: a scope set in one test is gone in the
    next (the autouse fixture), whatever the order of the two."""
    assert _current_scope() != 'mmpretrain_leak_check'
    init_default_scope('mmengine')
    DefaultScope.get_instance('mmpretrain_leak_check', scope_name='mmdet')


def test_each_test_starts_without_a_leftover_scope_b():
    assert 'mmpretrain_leak_check' not in DefaultScope._instance_dict
    test_each_test_starts_without_a_leftover_scope_a()
