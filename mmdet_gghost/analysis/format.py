"""Printing :func:`~.complexity.complexity_report` dicts: a rich table, a
line of notes, and the ``21.3M`` number format."""
from typing import Optional, Union

__all__ = [
    'format_count', 'complexity_notes', 'complexity_table',
    'print_complexity_report'
]


def format_count(x: Union[int, float, None], digits: int = 3) -> str:
    """``21284672 -> '21.3M'``; K/M/G/T suffixes, 3 significant digits."""
    if x is None:
        return '-'
    for div, suffix in ((1e12, 'T'), (1e9, 'G'), (1e6, 'M'), (1e3, 'K')):
        if abs(x) >= div:
            return f'{x / div:.{digits}g}{suffix}'
    return f'{x:.{digits}g}' if isinstance(x, float) else str(x)


def complexity_notes(report: dict) -> str:
    """One line saying what the numbers of a report mean (BN fused or not)."""
    n, c, h, w = report['input_shape']
    fused = ('yes' if report['bn_fused'] else
             f'no ({report["bn_layers"]} BN layers)')
    bn_ops = 'counted' if report['bn_macs_counted'] else 'not counted'
    return (f'input {n}x{c}x{h}x{w}; BN fused: {fused}; MACs = '
            'multiply-accumulates (mmengine FlopAnalyzer "flops"; BN ops '
            f'{bn_ops}); activations = elements of conv/linear outputs; '
            'ops = device-launching aten ops per forward (views and '
            'allocations excluded)')


def complexity_table(report: dict, title: Optional[str] = None):
    """A :class:`rich.table.Table` of a :func:`complexity_report` dict."""
    from rich.table import Table
    table = Table(title=title)
    table.add_column('module')
    for col in ('params', 'MACs', 'activations', 'ops'):
        table.add_column(col, justify='right')
    table.add_column('% backbone MACs', justify='right')
    bb_macs = report['backbone']['macs'] or 1

    def row(name, s, style=None, share=True):
        table.add_row(
            name,
            format_count(s['params']),
            format_count(s['macs']),
            format_count(s['activations']),
            str(s.get('ops', '-')),
            f'{100.0 * s["macs"] / bb_macs:.1f}' if share else '',
            style=style)

    if report['parts']:
        row('model (total)', report['total'], style='bold', share=False)
        for p in report['parts']:
            row(f'  {p["name"]}', p, share=False)
        table.add_section()
    bb_name = report['backbone']['name'] or 'backbone'
    row(f'{bb_name} (total)', report['backbone'], style='bold')
    for s in report['stages']:
        row(f'  {s["name"]}', s)
    if any(report['other'].values()):
        row('  (outside stages)', report['other'])
    return table


def print_complexity_report(report: dict,
                            title: Optional[str] = None,
                            console=None) -> None:
    """Print :func:`complexity_table` and :func:`complexity_notes`."""
    from rich.console import Console
    console = console or Console()
    console.print(complexity_table(report, title))
    console.print(complexity_notes(report), soft_wrap=True)
