"""The package's layers import downward only: models at the bottom, then
apis, then analysis / export / deploy, then benchmark, then applications.
Every import counts, also one placed inside a function (it would still be
a cycle), read from the source with ``ast``."""
import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / 'mmdet_gghost'

# Bottom first. A first-level module or subpackage of mmdet_gghost belongs
# to exactly one layer; modules of one layer may import each other.
LAYERS = (
    ('foundation', {'version', 'compat', 'registry', 'config_bases',
                    'checkpoint', 'datasets', 'hooks'}),
    ('models', {'models'}),
    ('apis', {'apis'}),
    ('analysis/export/deploy', {'analysis', 'export', 'deploy',
                                'cuda_graphs'}),
    ('benchmark', {'benchmark'}),
    ('apps', {'apps'}),
)
# ``import mmdet_gghost`` itself registers the models (``custom_imports``):
# its __init__ imports foundation and models only (checked below), so it
# sits in the models layer.
ROOT = ''


def layer_of(unit: str) -> int:
    if unit == ROOT:
        return 1
    for i, (_, units) in enumerate(LAYERS):
        if unit in units:
            return i
    raise AssertionError(
        f'mmdet_gghost.{unit} is in no layer: add it to LAYERS in '
        f'{Path(__file__).name}')


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix('').parts
    return '.'.join(parts[:-1] if parts[-1] == '__init__' else parts)


def _targets(path: Path):
    """``(imported module, line)`` of every import of our package."""
    name = _module_name(path)
    package = name if path.name == '__init__.py' else name.rpartition('.')[0]
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split('.')[:len(package.split('.')) -
                                          node.level + 1]
                module = '.'.join(base + [node.module] if node.module
                                  else base)
            else:
                module = node.module or ''
            # ``from . import apis`` imports the submodule apis
            subs = [f'{module}.{a.name}' for a in node.names]
            yield from ((m, node.lineno) for m in [module] + subs)
        elif isinstance(node, ast.Import):
            yield from ((a.name, node.lineno) for a in node.names)


def unit_of(module: str):
    """The first-level unit of ``mmdet_gghost.x.y`` (``'x'``), ``ROOT`` for
    the package itself, None for other packages."""
    parts = module.split('.')
    if parts[0] != 'mmdet_gghost':
        return None
    return parts[1] if len(parts) > 1 else ROOT


def import_edges(root=PACKAGE):
    """``(importer unit, imported unit, file, line)`` across units."""
    edges = []
    for path in sorted(root.rglob('*.py')):
        here = unit_of(_module_name(path))
        for module, line in _targets(path):
            there = unit_of(module)
            edge = (here, there, path, line)
            if there is not None and there != here and edge not in edges:
                edges.append(edge)
    return edges


def _existing_units(units):
    return {u for u in units if u == ROOT or (PACKAGE / u).is_dir()
            or (PACKAGE / f'{u}.py').is_file()}


def test_every_unit_has_a_layer():
    units = {p.stem if p.suffix else p.name for p in PACKAGE.iterdir()
             if (p.suffix == '.py' and p.stem != '__init__') or
             (p.is_dir() and (p / '__init__.py').is_file())}
    for unit in units:
        layer_of(unit)


def test_no_module_imports_a_higher_layer():
    upward = [
        f'{path.relative_to(PACKAGE.parent)}:{line}: {here} '
        f'({LAYERS[layer_of(here)][0]}) imports {there} '
        f'({LAYERS[layer_of(there)][0]})'
        for here, there, path, line in import_edges()
        if layer_of(there) > layer_of(here)
    ]
    assert not upward, 'imports upward:\n' + '\n'.join(upward)


def test_the_package_root_imports_foundation_and_models_only():
    above = [f'{there} (line {line})'
             for here, there, path, line in import_edges()
             if here == ROOT and layer_of(there) > layer_of('models')]
    assert not above, above


def test_no_import_cycle_between_units():
    graph = {}
    for here, there, _, _ in import_edges():
        if here != ROOT and there != ROOT:
            graph.setdefault(here, set()).add(there)

    def visit(unit, stack):
        if unit in stack:
            return stack[stack.index(unit):] + [unit]
        for nxt in sorted(graph.get(unit, ())):
            cycle = visit(nxt, stack + [unit])
            if cycle:
                return cycle
        return None

    for unit in sorted(graph):
        cycle = visit(unit, [])
        assert cycle is None, 'import cycle: ' + ' -> '.join(cycle)


@pytest.mark.parametrize('source, found', [
    ('from ..benchmark import load_model\n', 'benchmark'),
    ('def f():\n    from mmdet_gghost.apps import demo\n', 'apps'),
    ('import mmdet_gghost.apis.build\n', 'apis'),
])
def test_the_walk_finds_function_level_and_absolute_imports(
        tmp_path, source, found):
    """The rule's own check: a planted upward import in models/ is seen."""
    pkg = tmp_path / 'mmdet_gghost'
    (pkg / 'models').mkdir(parents=True)
    (pkg / '__init__.py').write_text('')
    (pkg / 'models' / '__init__.py').write_text('')
    (pkg / 'models' / 'planted.py').write_text(source)
    global PACKAGE
    saved, PACKAGE = PACKAGE, pkg
    try:
        edges = import_edges(pkg)
    finally:
        PACKAGE = saved
    assert [(h, t) for h, t, _, _ in edges] == [('models', found)]
    assert layer_of(found) > layer_of('models')
